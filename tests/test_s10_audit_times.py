"""`main.py audit` on a real recording whose host times are not times (tenth session's fresh tester).

A `limits` event at +inf made the audit step its 10 ms watchdog forever (full CPU, no output); one at NaN was sorted
after the session's last limits and gave EXTRA protocol-rule trips that never happened (exit 1). A host time that is
not finite is no time (docs/recording-format.md): an input at no time is not applied, is named UNREADABLE, and what
it judges is not judged (exit 3). A finite time far on is the file's word: judged by it, in the time the inputs take.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers_load import scenario_run

from main import main
from workstation.recording import Recording
from workstation.session import safety
from workstation.session.audit import audit

LOOKS_ALLOWED = 200_000  # far more than the session's own looks (~10 s / 10 ms); the old code made 10^8 for 10^6 s


@pytest.fixture(scope="module")
def tripped_recording(tmp_path_factory) -> Path:
    """A real headless session with an interlock trip: contact lost mid-exposure, the device's fault event with it."""
    return Path(scenario_run("contact-lost-mid-exposure", tmp_path_factory.mktemp("session")).recording)


@pytest.fixture
def counted_looks(monkeypatch) -> list[int]:
    """Counts the audit's watchdog looks, and fails at LOOKS_ALLOWED instead of running on for hours."""
    looks = [0]
    watch = safety.SafetyMonitor.watch

    def counting(self, t: float) -> None:
        looks[0] += 1
        if looks[0] > LOOKS_ALLOWED:
            raise AssertionError(f"the audit looked more than {LOOKS_ALLOWED} times (up to {t:.3f})")
        watch(self, t)

    monkeypatch.setattr(safety.SafetyMonitor, "watch", counting)
    return looks


def _edited(src: Path, dst_dir: Path, kind: bytes, which: str, value) -> Path:
    """A copy with the host time of the first (or last) event of `kind` set to `value` (a function of t0)."""
    dst = dst_dir / src.name
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        t0 = float(f.attrs["t0_host_s"])
        rows = f["events"][:]
        hits = np.flatnonzero(rows["kind"] == kind)
        assert len(hits), f"the recording has no {kind!r} event"
        i = hits[0] if which == "first" else hits[-1]
        rows["t_host_s"][i] = value(t0)
        if kind == b"interlock":  # a trip is judged by its cause's time: that one written as the recorder writes NaN
            d = json.loads(rows["details_json"][i])
            d["cause_t_host_s"], d["non_finite"] = None, {"/cause_t_host_s": "nan"}
            rows["details_json"][i] = json.dumps(d).encode()
        f["events"][...] = rows
    return dst


def _audit_out(path: Path, capsys) -> tuple[int, str]:
    code = main(["audit", str(path)])
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "internal error" not in out.err, out.err[-2000:]
    return code, out.out


NO_TIMES = {"nan": lambda t0: np.nan, "+inf": lambda t0: np.inf, "-inf": lambda t0: -np.inf}


@pytest.mark.parametrize("time", NO_TIMES)
@pytest.mark.parametrize(("kind", "which"), [(b"limits", "first"), (b"limits", "last"),
                                             (b"fault", "first"), (b"interlock", "first")])
def test_an_input_at_no_time_is_not_applied_and_what_it_judges_is_not_judged(
        tripped_recording, tmp_path, capsys, counted_looks, kind, which, time):
    path = _edited(tripped_recording, tmp_path, kind, which, NO_TIMES[time])
    code, out = _audit_out(path, capsys)
    assert code == 3, out
    assert "EXTRA (" not in out and "MISSING (" not in out and "DIFFER" not in out, out
    assert "at no time (its host time is not finite)" in out and "NOT JUDGED IN FULL" in out, out
    assert "UNREADABLE: " in out and " nan" not in out and "inf s" not in out, out  # no time, never a number
    if kind == b"limits":  # never "2 changes recorded and applied" above it (second fresh tester)
        assert "recorded and applied" not in out and "1 of them with fields that cannot be read or at no time" in out, out
    r = audit(Recording.open(path))
    assert any(not np.isfinite(t) for t, _what, _which in r.unreadable)


@pytest.mark.parametrize("far_s", [1e5, 1e6, 1e9, 1e14, 1e17, 1e300])  # 1e300: the looks stood still (18th session)
def test_a_time_far_on_is_judged_by_the_file_in_the_time_its_inputs_take(
        tripped_recording, tmp_path, capsys, counted_looks, far_s):
    """The last event (the session's end) 10^5 … 10^9 s on: the trips are the same as the unedited file's, with a
    bounded number of looks (the old audit looked every 10 ms up to it: 10^8 looks for 10^6 s)."""
    before = audit(Recording.open(tripped_recording))
    looks_before, counted_looks[0] = counted_looks[0], 0
    path = _edited(tripped_recording, tmp_path, b"limits", "last", lambda t0: t0 + far_s)
    rec = Recording.open(path)
    assert rec.duration_s >= far_s - 1  # the file's word: the session ends then
    after = audit(rec)
    assert [(a.interlock, a.device) for a, _b in after.reproduced] == \
        [(a.interlock, a.device) for a, _b in before.reproduced]
    assert after.same and not after.unreadable and before.same and after.reproduced
    assert counted_looks[0] <= 2 * looks_before + 10, (counted_looks[0], looks_before)
    code, out = _audit_out(path, capsys)
    assert code == 0 and "reproduced:" in out, out


@pytest.mark.parametrize("time", NO_TIMES)
def test_inspect_says_when_an_event_naming_an_area_is_at_no_time(tripped_recording, tmp_path, capsys, time):
    """The fresh tester: a NaN time on "step 1 started" made `inspect` give the light's dose as "unassigned" with no
    reason. Such an event is not used to place an exposure, and `inspect` says the areas may be wrong."""
    with Recording.open(tripped_recording) as rec:
        kinds = [e.kind for e in rec.events if "area" in e.details]
    assert kinds, "the recording has no event naming an area"
    path = _edited(tripped_recording, tmp_path, kinds[0].encode(), "first", NO_TIMES[time])
    assert main(["inspect", str(path)]) in (0, 1, 3)
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    assert "the areas given may be wrong: 1 event naming an area at no time" in out.out, out.out
    assert " nan" not in out.out and "inf s" not in out.out


def test_a_time_of_a_damaged_file_is_printed_short() -> None:
    """The fresh tester: an event at 1e300 s made `inspect` print a duration 300 digits long."""
    from workstation.words import seconds

    assert seconds(2.5) == "2.500 s" and seconds(1e6) == "1000000.000 s"
    assert seconds(1e300) == "1e+300 s" and seconds(-1e12) == "-1e+12 s"
    assert seconds(float("nan")) == seconds(None) and "nan" not in seconds(float("nan"))


@pytest.mark.parametrize("t0", [np.nan, np.inf, -np.inf])
def test_a_start_time_that_is_not_a_time_is_said_never_a_crash_or_a_silent_export(tripped_recording, tmp_path,
                                                                                  capsys, t0):
    """The second fresh tester: t0_host_s = inf made `audit` end in an internal error (exit 1, the code of "the trips
    differ"); NaN made `export` write header-only events and commands CSVs with no word."""
    path = tmp_path / tripped_recording.name
    shutil.copy(tripped_recording, path)
    with h5py.File(path, "r+") as f:
        f.attrs["t0_host_s"] = t0
    code, out = _audit_out(path, capsys)
    assert code == 3 and "the recording's start (t0_host_s) is not a finite time" in out, out
    assert "EXTRA (" not in out and "MISSING (" not in out
    assert main(["export", str(path), "--csv", str(tmp_path / "csv")]) == 2
    err = capsys.readouterr().err
    assert "its start time (t0_host_s) is not a finite number" in err and "Traceback" not in err, err
    assert not (tmp_path / "csv").exists() or not list((tmp_path / "csv").iterdir())
