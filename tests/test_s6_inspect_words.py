"""`inspect` says what it cannot know. Its telemetry review of a trip whose stop could not be sent (the device's link was gone) times the device's
stop from the trip and says the stop was not sent; it never says "after the stop was written" (a fresh tester of
issue 12: "pen stopped 498.9 ms after the stop was written" where the recording says "stop not written: pen is not
connected"). Its dose per area, when light samples had no usable time, dose or emission flag, says they were left out
("unknown from the telemetry" when nothing was left; it said "none" where the report gave 780 mJ/cm²). Real sessions
on the emulators, changed with plain h5py; `inspect` in a real process."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers_load import scenario_run

from workstation.recording import Recording
from workstation.session.outcome import stop_written

ROOT = Path(__file__).resolve().parents[1]


def _inspect(path: Path) -> str:
    shown = subprocess.run([sys.executable, str(ROOT / "main.py"), "inspect", str(path)], capture_output=True,
                           text=True, timeout=120, cwd=ROOT)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    return shown.stdout


def _run(name: str, folder: Path) -> Path:
    from workstation.session.runner import run_scenario
    from workstation.session.scenario import load_scenario

    result = run_scenario(load_scenario(ROOT / "seeds" / "scenarios" / f"{name}.toml"), folder, out=lambda s: None)
    assert result.recording is not None
    return Path(result.recording)


@pytest.fixture(scope="module")
def unplugged(tmp_path_factory) -> Path:
    return Path(scenario_run("unplug-replug-resume", tmp_path_factory.mktemp("unplugged")).recording)


def test_a_stop_that_was_not_sent_is_not_said_to_be_written(unplugged: Path) -> None:
    with Recording.open(unplugged) as rec:
        trips = [e for e in rec.events if e.kind == "interlock" and e.details.get("device") == "pen"]
    unsent = [e for e in trips if not stop_written(e.details)]
    assert unsent, [e.details for e in trips]  # the unplug's trip: its stop found no link
    text = _inspect(unplugged)
    reviews = [line.strip() for line in text.splitlines() if line.strip().startswith("telemetry: pen")]
    assert len(reviews) == len(trips), text  # one review per trip, in the recording's order
    # Each review by its own trip: a loaded run can add a trip whose stop was written (the pen's own heartbeat
    # watchdog before the unplug, a loaded series of issue 12), and its review rightly times the stop from the write.
    for trip, review in zip(trips, reviews, strict=True):
        if stop_written(trip.details):
            assert "the stop could not be sent" not in review, reviews
        else:
            assert "after the stop was written" not in review, reviews
    assert any("the trip (the stop could not be sent)" in line for line in reviews), reviews


@pytest.fixture(scope="module")
def lit(tmp_path_factory) -> Path:
    return Path(scenario_run("upper-arm-striae-light", tmp_path_factory.mktemp("lit")).recording)


def _dose_lines(text: str) -> list[str]:
    tail = text.split("dose delivered per area", 1)[1].splitlines()[1:]
    return [line for line in tail if line.startswith("  ")]


@pytest.mark.parametrize(("how", "first_words"), [
    ("every host time NaN", "unknown from the telemetry: "),
    ("three doses NaN", None),
])
def test_light_samples_left_out_of_the_dose_are_said(lit: Path, tmp_path: Path, how: str, first_words) -> None:
    before = _dose_lines(_inspect(lit))
    assert before and "left out" not in "".join(before), before
    copy = tmp_path / lit.name
    shutil.copy(lit, copy)
    with h5py.File(copy, "r+") as f:
        table = f["devices/light/telemetry"]
        rows = table[:]
        if how == "every host time NaN":
            rows["t_host_s"][:] = np.nan
        else:
            rows["dose_mj_cm2"][np.flatnonzero(rows["dose_mj_cm2"] > 0)[:3]] = np.nan
        table[:] = rows
    lines = _dose_lines(_inspect(copy))
    assert "  none" not in lines, lines
    if first_words:
        (line,) = lines
        assert line.startswith(f"  {first_words}{len(rows)} light samples with no usable time, dose or emission flag "
                               "(NaN or ±inf) left out; the session's own step records say: right-upper-arm "), lines
        assert line.endswith(" mJ/cm²"), line  # what the session counted at the step's end, which the file keeps
    else:
        assert lines[:-1] == before[: len(lines) - 1] and lines[-1].startswith("  perhaps more: 3 light samples "), \
            (before, lines)
