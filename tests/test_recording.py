"""Writing a session recording and reading it back value by value with plain h5py."""

from __future__ import annotations

import json
import time

import h5py
import numpy as np
import pytest
from helpers_recording import (
    LIGHT_CAL,
    PEN_CAL,
    add_devices,
    check_rows,
    frames,
    meta,
)

from drivers.channels import LIGHT_CHANNELS, PEN_CHANNELS
from workstation.bus import CommandRecord, Event, SessionBus
from workstation.checksum import sha256_of
from workstation.recording import FORMAT_VERSION, RecordingError, SessionMeta, SessionRecorder

T0 = 1000.0


def record(tmp_path, n_frames: int = 300, **kwargs) -> SessionRecorder:
    rec = SessionRecorder.create(tmp_path, meta(), min_free_bytes=0, t0_host_s=T0, **kwargs)
    add_devices(rec)
    rec.start()
    bus = SessionBus()
    bus.subscribe(rec)
    for k in range(n_frames):
        for dev in ("light", "pen"):
            bus.publish_block(dev, frames(dev, k, 1)[0])
        if k == 100:
            bus.publish_event(Event(T0 + 1.0, "interlock", "high", "safety", "Target dose reached: light off.",
                                    {"cause": "dose_reached", "latency_ms": 3.2, "area": "left cheek"}))
            bus.publish_command(CommandRecord(T0 + 1.01, "light", "stop", {}, "ack", T0 + 1.012))
            rec.write_plan({"steps": [{"area": "left cheek", "dose_mj_cm2": 200.0, "reason": "skin type III"}]})
    return rec


def test_roundtrip_every_value_and_attribute(tmp_path):
    rec = record(tmp_path)
    digest = rec.close()
    path = rec.path
    assert path.parent.name.count("-") == 2 and path.name == f"{rec_uuid(path)}.h5"
    assert (path.parent / (path.name + ".sha256")).read_text() == f"{digest}  {path.name}\n"
    assert sha256_of(path) == digest
    with h5py.File(path, "r") as f:
        a = f.attrs
        assert a["format"] == "cicatrix-session" and a["format_version"] == FORMAT_VERSION
        assert a["mode"] == "simulation" and a["patient_pseudonym"] == "PX-000123"
        assert a["operator_id"] == "op-7" and a["protocol_id"] == "acne-scar-combined"
        assert a["protocol_version"] == "1.2" and a["software_version"] == "0.1.0"
        assert a["t0_host_s"] == T0 and a["closed_cleanly"] and a["start_time_utc"].endswith("+00:00")
        for dev, channels, cal in (("light", LIGHT_CHANNELS, LIGHT_CAL), ("pen", PEN_CHANNELS, PEN_CAL)):
            g = f["devices"][dev]
            assert json.loads(g.attrs["calibration_json"]) == cal
            assert g.attrs["samples"] == 6000 and g.attrs["samples_lost"] == 0
            ds = g["telemetry"]
            assert ds.shape == (6000,)
            check_rows(dev, ds[:])
            for c in channels:
                assert ds.attrs[c.name + ".unit"] == c.unit
        assert f["devices/light"].attrs["lamp_hours_h"] == 812.5
        assert f["devices/pen"].attrs["cartridge_strokes"] == 12000
        assert f["devices/light"].attrs["serial_number"] == "L-0001"
        ev = f["events"][:]
        assert len(ev) == 1 and ev[0]["t_host_s"] == T0 + 1.0 and ev[0]["kind"] == b"interlock"
        assert json.loads(ev[0]["details_json"]) == {"area": "left cheek", "cause": "dose_reached", "latency_ms": 3.2}
        cmd = f["commands"][0]
        assert (cmd["device"], cmd["command"], cmd["result"], cmd["t_reply_s"]) == (b"light", b"stop", b"ack", T0 + 1.012)
        plan = json.loads(f["plan"][0]["plan_json"])
        assert plan["steps"][0]["reason"] == "skin type III"


def rec_uuid(path) -> str:
    return path.stem


def test_bad_meta_and_unwritable_folder(tmp_path):
    with pytest.raises(RecordingError, match="pseudonymous"):
        SessionMeta(meta().session_uuid, "clinical", "John Smith", "op", "p", "1", "0.1").check()
    with pytest.raises(RecordingError, match="mode"):
        SessionMeta(meta().session_uuid, "demo", "P1", "op", "p", "1", "0.1").check()
    not_a_folder = tmp_path / "recordings"
    not_a_folder.write_text("a file where the recordings folder should be")  # fails even for root, unlike chmod
    with pytest.raises(RecordingError, match="Cannot create the recordings folder .*recordings"):
        SessionRecorder.create(not_a_folder, meta(), min_free_bytes=0)


def test_too_little_free_space_is_refused_at_start(tmp_path):
    with pytest.raises(RecordingError, match="MB are free"):
        SessionRecorder.create(tmp_path, meta(), min_free_bytes=2**62)
    assert not list(tmp_path.rglob("*.h5"))


def test_values_are_unchanged_by_the_recorder_copy(tmp_path):
    rec = SessionRecorder.create(tmp_path, meta(), min_free_bytes=0, t0_host_s=T0)
    add_devices(rec)
    rec.start()
    block = frames("light", 0, 1)[0]
    rec.on_block("light", block)
    block["irradiance_mw_cm2"] = -1.0  # the publisher reusing its buffer must not change what is recorded
    rec.close()
    with h5py.File(rec.path) as f:
        check_rows("light", f["devices/light/telemetry"][:])
        assert np.all(f["devices/light/telemetry"]["irradiance_mw_cm2"] >= 0)


def test_a_reader_follows_a_live_recording(tmp_path):
    from workstation.recording.reader import Recording

    rec = SessionRecorder.create(tmp_path, meta(), min_free_bytes=0, t0_host_s=T0, flush_interval_s=0.05)
    add_devices(rec)
    rec.start()
    for k in range(100):
        rec.on_block("light", frames("light", k, 1)[0])
    deadline = time.monotonic() + 2.0
    while rec.stats.rows_written["light"] < 2000 and time.monotonic() < deadline:
        time.sleep(0.01)
    live = Recording.open(rec.path)
    assert live.partial and live.samples("light") == 2000
    for k in range(100, 150):
        rec.on_block("light", frames("light", k, 1)[0])
    while rec.stats.rows_written["light"] < 3000 and time.monotonic() < deadline:
        time.sleep(0.01)
    live.refresh()
    assert live.samples("light") == 3000
    check_rows("light", live.telemetry("light"))
    live.close()
    rec.close()
