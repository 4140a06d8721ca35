"""A wait cut short by the session's own stop says nothing about the device (a third fresh tester of issue 12, 3 of 3
runs): an E-stop right at the end of a needling pass ended the wait for the pen's stop, and the step's note said "the
pen was not seen stopped within 500 ms of STOP" of a pen the recording shows stopped 56 ms after it. A real headless
session on the emulators: the E-stop falls as the first pass ends, then reset and resume."""

from __future__ import annotations

from pathlib import Path

from helpers_load import load_trips

from workstation.session.runner import run_scenario
from workstation.session.scenario import load_scenario

SCENARIO = """\
[scenario]
title = "needling E-stop at a pass's end, reset, resume"
description = "Two passes of 0.5 s; the E-stop falls as the first ends."
expect = "completed"

[patient]
pseudonym = "TRAIN-0007"
skin_type = 2

[[areas]]
id = "left-hand-dorsum"
region = "hand"
lesion = "atrophic_scar"
size_cm2 = 4
scar_kind = "atrophic_shallow"
scar_age_months = 8

[session]
protocol = "atrophic-scar-needling"
operator = "trainee-04"
pass_duration_s = 0.5
light_warmup_s = 0.5
seed = 7

[[events]]
at_s = {at}
action = "estop"

[[events]]
at_s = 1.0
action = "reset"

[[events]]
at_s = 1.2
action = "resume"
"""


def test_an_estop_as_a_pass_ends_is_not_the_pen_failing_to_stop(tmp_path: Path) -> None:
    notes = []
    for i, at in enumerate((0.55, 0.6, 0.65)):  # around the first pass's end, whatever the machine's pace
        path = tmp_path / f"s{i}.toml"
        path.write_text(SCENARIO.replace("{at}", str(at)))
        result = run_scenario(load_scenario(path), tmp_path / f"rec{i}", out=lambda _line: None)
        if load_trips(result.summary["trips"]):
            continue  # a load trip changes the course: judged on the other runs
        [step] = result.summary["results"]
        notes.append(step["note"])
        assert "not seen stopped" not in step["note"], (at, step)
        assert step["outcome"] == "done" and step["passes_done"] == 2, (at, step)
    assert notes, "every run had a load trip"
