"""Recording.open: windows by time, and a clear error for each kind of bad file."""

from __future__ import annotations

import os
import shutil
import time

import h5py
import numpy as np
import pytest
from helpers_recording import FRAME, add_devices, check_rows, frames, meta

from workstation.checksum import sha256_of
from workstation.recording import FORMAT_VERSION, RecordingError, SessionRecorder
from workstation.recording.reader import Recording

T0 = 1000.0


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    rec = SessionRecorder.create(tmp_path_factory.mktemp("rec"), meta(), min_free_bytes=0, t0_host_s=T0,
                                 queue_alarm_rows=10**9)
    add_devices(rec)
    rec.start()
    for k in range(2000):  # 20 s of both devices
        for dev in ("light", "pen"):
            rec.on_block(dev, frames(dev, k, 1)[0])
        if k % 150 == 0:
            time.sleep(0.01)  # several appends, so the time index has many rows
    rec.close()
    return rec.path



def test_metadata_devices_and_windows(recorded):
    digest = sha256_of(recorded)
    with Recording.open(recorded) as rec:
        assert not rec.partial and rec.partial_reason is None
        assert rec.meta.format_version == FORMAT_VERSION and rec.meta.patient_pseudonym == "PX-000123"
        assert rec.meta.end_time_utc is not None and rec.meta.t0_host_s == T0
        assert set(rec.devices) == {"light", "pen"}
        light = rec.devices["light"]
        assert light.units["irradiance_mw_cm2"] == "mW/cm²" and light.identity["lamp_hours"] == 812.5
        assert rec.devices["pen"].units["depth_mm"] == "mm" and rec.devices["pen"].serial_number == "P-0042"
        assert rec.samples("light") == rec.samples("pen") == 2000 * FRAME
        assert rec.duration_s == pytest.approx(20.003)
        check_rows("light", rec.telemetry("light"))
        for t0, t1 in ((0.0, 10.0), (3.33, 7.771), (19.5, 25.0), (-5.0, 0.5)):
            w = rec.telemetry("light", t0, t1)
            i0 = int(np.ceil(max(t0, 0.0) / 0.01 - 1e-9)) - 1  # frame k arrives at (k + 1) * 10 ms
            i0 = max(i0, 0) * FRAME
            check_rows("light", w, i0)
            t = w["t_host_s"] - T0
            assert t.min() >= t0 and t.max() < t1
            assert len(w) == len(rec.telemetry("light")[(rec.telemetry("light")["t_host_s"] - T0 >= t0)
                                                      & (rec.telemetry("light")["t_host_s"] - T0 < t1)])
        with pytest.raises(RecordingError, match="no device 'laser'"):
            rec.telemetry("laser")
    assert sha256_of(recorded) == digest  # reading never writes


def test_not_hdf5(tmp_path):
    p = tmp_path / "notes.h5"
    p.write_text("this is a text file")
    with pytest.raises(RecordingError, match=r"notes\.h5 is not an HDF5 file"):
        Recording.open(p)


def test_missing_file(tmp_path):
    with pytest.raises(RecordingError, match="no such recording"):
        Recording.open(tmp_path / "nope.h5")


def test_foreign_hdf5(tmp_path):
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f["data"] = np.arange(10)
    with pytest.raises(RecordingError, match=r"other\.h5 is an HDF5 file but not a Cicatrix session recording"):
        Recording.open(p)


def test_newer_format(tmp_path, recorded):
    p = tmp_path / "newer.h5"
    shutil.copy(recorded, p)
    with h5py.File(p, "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(RecordingError, match=rf"newer\.h5 uses recording format {FORMAT_VERSION + 1}, newer"):
        Recording.open(p)


@pytest.mark.parametrize("fraction", [0.97, 0.5, 0.01])
def test_truncated(tmp_path, recorded, fraction):
    p = tmp_path / "cut.h5"
    shutil.copy(recorded, p)
    os.truncate(p, int(os.path.getsize(p) * fraction))
    with pytest.raises(RecordingError, match=r"cut\.h5 is truncated"):
        Recording.open(p)


def test_missing_root_attribute_is_damage(tmp_path, recorded):
    p = tmp_path / "noattr.h5"
    shutil.copy(recorded, p)
    with h5py.File(p, "r+") as f:
        del f.attrs["t0_host_s"]
    with pytest.raises(RecordingError, match=r"noattr\.h5 is a damaged HDF5 file: its root attribute 't0_host_s' is missing"):
        Recording.open(p)


def test_events_come_back_in_time_order_whatever_the_file_order(tmp_path):
    """Rows are written in arrival order (several threads publish); the reader returns them in time order, stable
    for equal times, for every consumer."""
    from helpers_recording import write_session

    from workstation.bus import Event

    def ev(t: float, name: str) -> Event:
        return Event(T0 + t, "note", "info", "operator", name, {})

    published = [ev(0.5, "c"), ev(0.2, "a"), ev(0.5, "d"), ev(0.3, "b"), ev(0.5, "e"), ev(0.1, "first")]
    path = write_session(tmp_path, 1.0, events=published)
    with h5py.File(path, "r") as h5:  # the file keeps arrival order
        assert [m.decode() for m in h5["events"]["message"]] == [e.message for e in published]
    with Recording.open(path) as r:
        assert [e.message for e in r.events] == ["first", "a", "b", "c", "d", "e"]
