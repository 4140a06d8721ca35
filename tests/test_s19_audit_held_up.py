"""`audit` of a recording whose telemetry interlock was decided while the workstation was held up.

Fresh tester of issue 12 (seventeenth session), load 9: the live watchdog was held up 1.0 s, and on its next look its
wall-clock bound (4 × 250 ms) stopped the light: "the workstation could not look for 1.0 s (a stall of 1.0 s, over
the 1 s limit) …". The audit leaves the stall's stretch out, as the live watchdog could not look in it, so it cannot
make that trip again, and said "MISSING … the trips DIFFER" (exit 1). Such a recorded trip is not judged (exit 3).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import pytest
from helpers_load import scenario_run

from drivers.codes import InterlockCause
from drivers.silence import STALL_DETAIL
from workstation.bus import Event
from workstation.recording import Recording
from workstation.session.audit import audit, audit_exit_code, format_audit
from workstation.session.safety import STALL_EVENT


@pytest.fixture(scope="module")
def uneventful(tmp_path_factory) -> Path:
    """A real headless session's recording with no trip (combined-uneventful)."""
    return Path(scenario_run("combined-uneventful", tmp_path_factory.mktemp("held-up-audit")).recording)


def _with_events(src: Path, folder: Path, events: list[Event]) -> Path:
    """A copy of `src` (no sidecars: its checksum no longer holds) with `events` appended to /events."""
    path = folder / src.name
    shutil.copy(src, path)
    with h5py.File(path, "r+") as f:
        ds = f["events"]
        n = ds.shape[0]
        ds.resize((n + len(events),))
        for k, e in enumerate(events):
            row = ds[n - 1]
            row["t_host_s"], row["kind"], row["severity"] = e.t_host_s, e.kind, e.severity
            row["source"], row["message"], row["details_json"] = e.source, e.message, json.dumps(e.details)
            ds[n + k] = row
    return path


def _held_up_trip(stall_to: float, stall_s: float) -> list[Event]:
    stall = Event(stall_to, STALL_EVENT, "info", "safety", f"the workstation was held up for {stall_s * 1000:.0f} ms",
                  {"from_t_host_s": stall_to - stall_s, "stall_s": stall_s})
    trip = Event(stall_to + 0.001, "interlock", "high", "safety", "INTERLOCK telemetry_lost on light: the workstation "
                 f"could not look for {stall_s:.1f} s (a stall of {stall_s:.1f} s, over the 1 s limit)",
                 {"interlock": InterlockCause.TELEMETRY_LOST.value, "cause": InterlockCause.TELEMETRY_LOST.value,
                  "device": "light", "cause_t_host_s": stall_to, "stop_written_t_host_s": stall_to + 0.001,
                  "seen_silence_s": 0.0, "silence_s": stall_s, STALL_DETAIL: stall_s, "stop": "stop written"})
    return [stall, trip]


def _t(path: Path, s: float) -> float:
    with Recording.open(path) as rec:
        return rec.meta.t0_host_s + s


def test_a_trip_decided_in_a_stall_is_not_judged_and_the_audit_exits_3(uneventful, tmp_path):
    path = _with_events(uneventful, tmp_path, _held_up_trip(_t(uneventful, 2.0), 1.02))
    with Recording.open(path) as rec:
        result = audit(rec)
        text = format_audit(rec, result)
        code = audit_exit_code(rec, result)
    assert not result.missing and not result.extra, text
    assert [(who, t.interlock) for who, t in result.not_judged] == [("recorded", "telemetry_lost")], text
    assert "not judged (recorded; decided while the workstation was held up, a stretch the audit leaves out)" in text
    assert "DIFFER" not in text and "NOT JUDGED IN FULL" in text and "1 trip decided while the workstation was held up" \
        in text, text
    assert code == 3


def test_a_telemetry_trip_the_devices_silence_decided_is_still_judged(uneventful, tmp_path):
    """Without the stall detail (a device that went silent while the watchdog looked) the recorded trip is compared:
    this session's telemetry never went silent, so it is MISSING and the trips differ."""
    events = _held_up_trip(_t(uneventful, 2.0), 1.02)
    del events[1].details[STALL_DETAIL]
    path = _with_events(uneventful, tmp_path, events)
    with Recording.open(path) as rec:
        result = audit(rec)
        assert [t.interlock for t in result.missing] == ["telemetry_lost"], format_audit(rec, result)
        assert audit_exit_code(rec, result) == 1
