"""`main.py audit` on a real recording whose inputs cannot be read: never an invented or hidden trip (fresh tester).

Limits whose details cannot be read, a recorded trip without a readable interlock or device, and telemetry samples
that are NaN: each is an UNREADABLE input, what judges by it is set apart as not judged, and the audit exits 3 (the
same where judged), never 1 with an EXTRA or MISSING trip the recording does not support.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers_load import scenario_run

from main import main
from workstation.bus import detail_number
from workstation.recording import Recording
from workstation.session.audit import audit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tripped_recording(tmp_path_factory) -> Path:
    """A real headless session with an interlock trip, a reset and a resume (contact lost mid-exposure), as in
    test_recording_null_numbers.py."""
    return Path(scenario_run("contact-lost-mid-exposure", tmp_path_factory.mktemp("session")).recording)


def _copy(src: Path, dst_dir: Path) -> Path:
    dst = dst_dir / src.name
    shutil.copy(src, dst)
    return dst


def _edit_first_event(path: Path, kind: bytes, details_json: bytes | None = None, edit=None) -> None:
    with h5py.File(path, "r+") as f:
        rows = f["events"][:]
        r = next(r for r in rows if r["kind"] == kind)
        if edit is not None:
            d = json.loads(r["details_json"])
            edit(d)
            details_json = json.dumps(d).encode()
        r["details_json"] = details_json
        f["events"][...] = rows


def _audit_out(path: Path, capsys) -> tuple[int, str]:
    code = main(["audit", str(path)])
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "internal error" not in out.err, out.err[-2000:]
    return code, out.out


def _judged_the_same_but_not_in_full(code: int, out: str) -> None:
    assert code == 3, out
    # the audit's own verdicts (not the integrity warning of a copy made without its .sha256 and .sig)
    assert "EXTRA (" not in out and "MISSING (" not in out and "DIFFER" not in out, out
    assert "UNREADABLE at " in out and "NOT JUDGED IN FULL" in out, out
    assert "None" not in out and "[" not in out and "]" not in out, out  # never a raw value in a sentence


@pytest.mark.parametrize("details_json", [b"{bad", b"[1,2]", b"{}", b'{"max_lamp_temp_c": NaN}', None],
                         ids=["not-json", "a-list", "empty", "nan-only", "light_allowed-removed"])
def test_limits_whose_details_cannot_be_read_are_not_judged(tripped_recording, tmp_path, capsys, details_json):
    """F2: the light step's limits unreadable (or one field missing: to_details writes every field) were read as
    the defaults, light not allowed: the audit invented `EXTRA protocol_rule on light (area none)`, exit 1, and said
    the limits were "recorded and applied"."""
    path = _copy(tripped_recording, tmp_path)
    if details_json is None:
        _edit_first_event(path, b"limits", edit=lambda d: d.pop("light_allowed"))
    else:
        _edit_first_event(path, b"limits", details_json)
    code, out = _audit_out(path, capsys)
    _judged_the_same_but_not_in_full(code, out)
    assert "protocol_rule" in out.split("NOT JUDGED IN FULL")[1], out
    assert "recorded and applied" not in out and "1 of them with fields that cannot be read" in out, out
    assert "(not a value the monitor can use): applied as unlimited" in out, out
    assert "not a number" not in out, out  # area_id and the bool fields are values, not numbers
    assert "reproduced: contact_lost on light" in out, out  # what does not judge by the limits is still judged
    if details_json is None:
        assert "UNREADABLE at 0." in out and "step limits light_allowed (" in out, out
    elif details_json != b'{"max_lamp_temp_c": NaN}':
        assert "step limits with no readable field" in out, out


@pytest.mark.parametrize(("edit", "words"), [
    ("not json", "a recorded trip: its interlock is missing and its device is missing"),
    ({"device": None}, "a recorded contact_lost trip: its device is null"),
    ({"interlock": ["over_temperature"]}, "a recorded trip on light: its interlock is a list"),
], ids=["not-json", "device-null", "interlock-a-list"])
def test_a_recorded_trip_that_cannot_be_read_is_never_compared(tripped_recording, tmp_path, capsys, edit, words):
    """F3: an interlock event whose details cannot be read gave `MISSING ? on  at 0.877 s` and a matching EXTRA,
    exit 1, with texts like `on None`. It is an unreadable input at its time; the trip made near it is set apart."""
    path = _copy(tripped_recording, tmp_path)
    if isinstance(edit, str):
        _edit_first_event(path, b"interlock", edit.encode())
    else:
        _edit_first_event(path, b"interlock", edit=lambda d: d.update(edit))
    code, out = _audit_out(path, capsys)
    _judged_the_same_but_not_in_full(code, out)
    with Recording.open(path) as rec:
        e = next(e for e in rec.events if e.kind == "interlock")  # its time: the cause's where that can be read
        t_trip = detail_number(e.details, "cause_t_host_s", e.t_host_s) - rec.meta.t0_host_s
        result = audit(rec)
    assert not result.recorded and result.trips_unreadable == 1 and result.same and not result.judged_in_full
    assert [(who, a.interlock, a.device) for who, a in result.not_judged] == [("made now", "contact_lost", "light")]
    assert f"UNREADABLE at {t_trip:.3f} s: {words}, not a name the monitor can use: never compared" in out, out
    assert "not judged (made now; an input it needs is unreadable): contact_lost on light" in out, out


def test_an_unreadable_trip_recorded_late_after_its_cause_sets_apart_the_trip_made_before_it(tripped_recording,
                                                                                            tmp_path, capsys):
    """A loaded `make test` (sixteenth session): the contact_lost trip's event was recorded 156 ms after its cause;
    with its details unreadable only that later time was known, the trip the audit made at the cause fell outside
    the 50 ms it set apart, and the audit said EXTRA … the trips DIFFER (exit 1). A trip whose cause time cannot be
    read was caused before it was recorded: what is set apart reaches back to the previous trip (here none)."""
    path = _copy(tripped_recording, tmp_path)
    with h5py.File(path, "r+") as f:
        rows = f["events"][:]
        r = next(r for r in rows if r["kind"] == b"interlock")
        r["details_json"], r["t_host_s"] = b"not json", r["t_host_s"] + 0.4  # as late as a starved machine records it
        f["events"][...] = rows
    code, out = _audit_out(path, capsys)
    _judged_the_same_but_not_in_full(code, out)
    assert "not judged (made now; an input it needs is unreadable): contact_lost on light" in out, out
    assert "its cause came before it was recorded" in out and "a trip made to " in out, out


def test_a_trip_made_far_from_an_unreadable_one_is_still_judged(tripped_recording, tmp_path):
    """Only a trip within the tolerance of the unreadable one's time is set apart: the rest is still compared."""
    path = _copy(tripped_recording, tmp_path)
    with h5py.File(path, "r+") as f:  # the recorded trip's details unreadable, and its time moved 1 s away
        rows = f["events"][:]
        r = next(r for r in rows if r["kind"] == b"interlock")
        r["details_json"], r["t_host_s"] = b"not json", r["t_host_s"] - 1.0
        f["events"][...] = rows
    with Recording.open(path) as rec:
        result = audit(rec)
    assert not result.missing and not result.recorded  # the unreadable one is never compared
    assert [a.interlock for a in result.extra] == ["contact_lost"] and not result.not_judged
    assert not result.same


def test_nan_samples_are_heard_by_the_watchdog_and_leave_the_sample_checks_unjudged(tripped_recording, tmp_path,
                                                                                   capsys):
    """F5: NaN lamp temperature and irradiance from some row to the end of the light's telemetry. Skipped, those
    frames were silence to the replayed watchdog (`EXTRA telemetry_lost`); they arrived, so the watchdog hears them,
    and the checks judged on samples cannot be judged on them."""
    path = _copy(tripped_recording, tmp_path)
    with h5py.File(path, "r+") as f:
        tel = f["devices/light/telemetry"]
        rows = tel[:]
        start = len(rows) // 3
        for column in ("lamp_temp_c", "irradiance_mw_cm2"):
            rows[column][start:] = np.nan
        tel[...] = rows
        n_bad = len(rows) - start
    with Recording.open(path) as rec:
        result = audit(rec)
    assert result.nonfinite_samples == n_bad
    assert not [a for a in result.replayed if a.interlock == "telemetry_lost"], result.replayed
    assert result.same and not result.judged_in_full
    ((_t, what, which),) = result.unreadable
    assert f"{n_bad} samples of the light's telemetry" in what
    assert {"contact_lost", "over_temperature", "target_dose_reached", "area_dose_cap", "protocol_rule", "depth_limit",
            "sensor_implausible"} <= set(which) and "telemetry_lost" not in which
    code, out = _audit_out(path, capsys)
    _judged_the_same_but_not_in_full(code, out)
    assert "telemetry_lost" not in out, out


@pytest.mark.parametrize("version", [1, 2])
def test_a_bare_null_limit_means_no_limit_in_format_1_only(tripped_recording, tmp_path, capsys, version):
    """Format 1 wrote an infinite limit (no area cap) as a bare null; format 2 names it in the `non_finite` note.
    A format 1 file's bare null is read as it was meant (the same trips, exit 0); in format 2 a null no note names
    is unreadable (exit 3)."""
    path = _copy(tripped_recording, tmp_path)

    def bare(d: dict) -> None:
        d["area_dose_cap_mj_cm2"] = None
        d.pop("non_finite", None)

    with h5py.File(path, "r+") as f:
        rows = f["events"][:]
        for r in rows:
            if r["kind"] == b"limits":
                d = json.loads(r["details_json"])
                bare(d)
                r["details_json"] = json.dumps(d).encode()
        f["events"][...] = rows
        f.attrs["format_version"] = version
    code, out = _audit_out(path, capsys)
    assert code == (0 if version == 1 else 3), out


def test_samples_that_have_no_time_are_said_at_no_time_not_at_the_start(tripped_recording, tmp_path, capsys):
    """A fresh tester of issue 12: the pen's samples with every host time NaN were "UNREADABLE at 0.000 s", a time
    the file does not give. Said without a time; a light sample with one keeps its own."""
    path = _copy(tripped_recording, tmp_path)
    with h5py.File(path, "r+") as f:
        pen = f["devices/pen/telemetry"]
        rows = pen[:]
        rows["t_host_s"][:] = np.nan
        pen[...] = rows
        light = f["devices/light/telemetry"]
        lit = light[:]
        lit["lamp_temp_c"][-5:] = np.nan
        light[...] = lit
        t_light = float(lit["t_host_s"][-5]) - float(f.attrs["t0_host_s"])
    with Recording.open(path) as rec:
        result = audit(rec)
    by_device = {what.split(" of the ", 1)[1].split("'s")[0]: t for t, what, _which in result.unreadable
                 if "telemetry with a non-finite value" in what}
    assert math.isnan(by_device["pen"]) and by_device["light"] == pytest.approx(t_light, abs=1e-6), by_device
    _code, out = _audit_out(path, capsys)
    pen_line = next(line for line in out.splitlines() if "of the pen's telemetry" in line)
    assert pen_line.lstrip().startswith("UNREADABLE: "), pen_line
