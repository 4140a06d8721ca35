"""Messages on the recovery paths are sentences in words (issue 9, tester's finding 7): a crashed session whose
recording cannot be read, a truncated recording given to `inspect`, the operator's reset, and the headless runner's
lines for a motor jam and its reset."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from drivers.codes import InterlockCause
from workstation.protocols import load_library
from workstation.recording.format import ballast_path
from workstation.session.journal import close_crashed_sessions
from workstation.session.runner import run_scenario
from workstation.session.safety import Trip
from workstation.session.scenario import load_scenario
from workstation.session.session import State
from workstation.store import ClinicStore
from workstation.ui.treatment_view import reset_words

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "seeds" / "scenarios"


def _dead_process_token() -> str:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return f"{proc.pid}:1"


def test_a_crashed_session_with_an_unreadable_recording_is_closed_in_words_and_its_ballast_removed(
        tmp_path: Path, caplog) -> None:
    recording = tmp_path / "rec" / "2026-11-30" / "cut.h5"
    recording.parent.mkdir(parents=True)
    recording.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 200)  # an HDF5 signature and nothing after it
    ballast_path(recording).write_bytes(b"\0" * 4096)
    lib = load_library()
    with ClinicStore.open(tmp_path / "t.sqlite3", training=True) as store:
        patient = store.create_patient("TRAIN-0950")
        area = store.add_area(patient.id, "chin", "face", "hypopigmented_scar", 4, "III")
        course = store.create_course(patient.id, lib.get("hypopigmented-scar-light"), [area.id], dt.date.today())
        sid = store.add_session(course.id, dt.date.today(), state="in_progress", process=_dead_process_token(),
                                recording_path=recording)
        with caplog.at_level(logging.INFO):
            [closed] = close_crashed_sessions(store)
        [record] = store.history(course.id)
    assert closed.session_id == sid and record.state == "crashed"
    assert "its recording could not be read here (damaged or cut short)" in closed.note
    assert "Error" not in closed.note
    assert not ballast_path(recording).exists() and recording.exists()  # the reserve goes; the evidence stays
    assert not [r for r in caplog.records if r.name == "workstation.session.journal" and r.levelno >= logging.WARNING]


def test_inspect_on_a_truncated_recording_says_so_without_the_library_text(tmp_path: Path) -> None:
    result = run_scenario(load_scenario(SCENARIOS / "pih-gentle-needling.toml"), tmp_path / "rec",
                          out=lambda _line: None)
    data = Path(result.recording).read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "inspect", str(cut)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2
    assert "is truncated: it holds" in done.stderr and "copy it again" in done.stderr
    assert "synchronously" not in done.stderr and "eof =" not in done.stderr


def test_the_reset_message_names_each_interlock_once_in_words_and_the_next_action_that_can_succeed() -> None:
    estop = [Trip(InterlockCause.ESTOP, "light", "E-stop", 0.0, 0.0), Trip(InterlockCause.ESTOP, "pen", "E-stop", 0.0, 0.0)]
    armed = reset_words(estop, SimpleNamespace(state=State.ARMED))
    assert armed.count("E-stop") == 1 and "estop" not in armed and "Start the next step" in armed
    assert "Resume" not in armed  # Resume is disabled while the session is armed
    paused = reset_words([Trip(InterlockCause.DEVICE_FAULT, "pen", "jam", 0.0, 0.0)], SimpleNamespace(state=State.PAUSED))
    assert "device_fault" not in paused and paused.endswith("Resume when ready.")
    # a STOP clicked just after the reset cleared (a fresh tester, 19th session): named, no action that is refused
    again = reset_words(estop, SimpleNamespace(state=State.ARMED), estop[:1])
    assert "Since then E-stop latched again" in again and "when ready" not in again


JAM = """[scenario]
title = "Motor jam, freed, reset and resumed"
expect = "completed"

[patient]
pseudonym = "TRAIN-0301"
skin_type = 3

[[areas]]
id = "chin"
region = "face"
lesion = "atrophic_scar"
size_cm2 = 4

[session]
protocol = "atrophic-scar-needling"
operator = "tester"
pass_duration_s = 1.0
seed = 7

[[events]]
at_s = 0.7
action = "motor_jam"
device = "pen"

[[events]]
at_s = 1.0
action = "reset"

[[events]]
at_s = 1.3
action = "clear_faults_cause"
device = "pen"

[[events]]
at_s = 1.6
action = "reset"

[[events]]
at_s = 1.8
action = "resume"
"""


def test_the_headless_motor_jam_lines_are_in_words(tmp_path: Path) -> None:
    scenario = tmp_path / "jam.toml"
    scenario.write_text(JAM)
    lines: list[str] = []
    result = run_scenario(load_scenario(scenario), tmp_path / "rec", out=lines.append)
    text = "\n".join(lines)
    assert result.summary["trips"][0]["interlock"] == InterlockCause.DEVICE_FAULT
    assert "motor still jammed: free the needle mechanism" in text  # the refused reset, in the reset's sentence
    assert "Cannot reset: the cause of" not in text and "(code 9)" not in text
    assert "device_fault" not in text and "MOTOR_JAM" not in text and "reset by tester: Device fault" in text
