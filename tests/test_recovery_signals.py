"""Every way a headless session ends without End session journals what was delivered before its row is closed:
Ctrl+C (SIGINT) and SIGTERM sent to a real `main.py session` subprocess mid-exposure leave the session 'partial' with
its light dose from the recording's telemetry, so the next plan and the cumulative cap count it (issue 9, tester's
finding 1)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workstation.recording.format import ballast_path
from workstation.session.journal import deliveries_from_recording

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "seeds" / "scenarios"


def _scenario_without_crash(tmp_path: Path) -> Path:
    """crash-and-restart.toml without its SIGKILL: a 260 mJ/cm² exposure of about 2.7 s."""
    text = (SCENARIOS / "crash-and-restart.toml").read_text()
    path = tmp_path / "light-only.toml"
    path.write_text(text.split("[[events]]")[0])
    return path


def _interrupt_mid_exposure(tmp_path: Path, signum: int, scenario: Path | None = None
                            ) -> tuple[subprocess.CompletedProcess, Path]:
    """Run a headless session (`scenario`, or crash-and-restart without its crash) and send it `signum` 1.2 s into
    its first step's exposure; the finished process and its store."""
    store = tmp_path / "training.sqlite3"
    cmd = [sys.executable, str(ROOT / "main.py"), "session", "--simulate", "--scenario",
           str(scenario or _scenario_without_crash(tmp_path)), "--record", str(tmp_path / "rec"), "--store", str(store)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if "step 1 started" in line:
            break
    time.sleep(1.2)  # mid-exposure: the dose is partly given
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(cmd, proc.returncode, "".join(lines) + out, err), store


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 128 + signal.SIGTERM)])
def test_a_signal_mid_exposure_journals_the_dose_the_recording_holds(tmp_path: Path, signum: int, code: int) -> None:
    done, store = _interrupt_mid_exposure(tmp_path, signum)
    assert done.returncode == code, done.stdout + done.stderr
    with sqlite3.connect(store) as c:
        sessions = c.execute("SELECT state, outcome_note, recording_path FROM sessions").fetchall()
        treatments = c.execute("SELECT modality, dose_mj_cm2 FROM treatments").fetchall()
        linked = c.execute("SELECT count(*) FROM recordings").fetchone()[0]
    [(state, note, recording)] = sessions
    assert state == "partial" and "closed during the session" in note, sessions
    recorded = deliveries_from_recording(Path(recording))
    [(modality, dose)] = treatments
    assert modality == "light" and 0 < dose < 260
    assert dose == pytest.approx(recorded[0].dose_mj_cm2, abs=0.01)  # the telemetry's figure, as inspect gives it
    assert linked == 1 and not ballast_path(Path(recording)).exists()


NEEDLING_CRASH = """[scenario]
title = "Combined session, the workstation crashes during the needling"
expect = "aborted"

[patient]
pseudonym = "TRAIN-0202"
skin_type = 3

[[areas]]
id = "left-cheek"
region = "face"
lesion = "hypopigmented_atrophic_scar"
size_cm2 = 6

[session]
protocol = "hypopigmented-atrophic-scar-combined"
operator = "tester"
pass_duration_s = 1.0
light_warmup_s = 0.5
seed = 5

[[events]]
at_s = 4.5
action = "crash"
"""


def _crashed_recording(tmp_path: Path, scenario: Path) -> Path:
    store = tmp_path / "training.sqlite3"
    cmd = [sys.executable, str(ROOT / "main.py"), "session", "--simulate", "--scenario", str(scenario), "--record",
           str(tmp_path / "rec"), "--store", str(store)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr
    with sqlite3.connect(store) as c:
        [(path,)] = c.execute("SELECT recording_path FROM sessions").fetchall()
    return Path(path)


def test_the_report_of_a_crashed_light_session_gives_the_dose_the_telemetry_shows(tmp_path: Path) -> None:
    from workstation.ui.report_data import read_report

    path = _crashed_recording(tmp_path, SCENARIOS / "crash-and-restart.toml")
    [light] = deliveries_from_recording(path)
    data = read_report(path)
    [step] = data.steps
    # the report gives what the telemetry shows; the store counts at most UNRECORDED_EMISSION_MAX_S more of the
    # exposure the recording shows open at its end (journal.deliveries_from_recording: never under-counted)
    from workstation.session.journal import UNRECORDED_EMISSION_MAX_S

    assert step.delivered_dose_mj_cm2 > 0
    assert step.delivered_dose_mj_cm2 - 0.01 <= light.dose_mj_cm2 <= (step.delivered_dose_mj_cm2 + 0.01
                                                                      + 150.0 * UNRECORDED_EMISSION_MAX_S)
    text = "\n".join(data.lines())
    assert "No UV was delivered" not in text and "not ended" not in text and "— delivered" not in text
    assert "Session partial: 0 of 1 step done. The session was interrupted" in text
    from workstation.ui.report_data import UNENDED

    assert UNENDED in step.describe() and "the recording ends during this step" in UNENDED
    pdf = tmp_path / "crash.pdf"
    made = subprocess.run([sys.executable, str(ROOT / "main.py"), "report", str(path), "--out", str(pdf)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert made.returncode == 0, made.stderr
    if shutil.which("pdftotext"):  # poppler, as tests/test_report.py reads the PDF's text
        pdf_text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        assert "Session partial" in pdf_text and "No UV was delivered" not in pdf_text


def test_the_report_of_a_crashed_needling_step_counts_the_passes_started(tmp_path: Path) -> None:
    from workstation.ui.report_data import read_report

    scenario = tmp_path / "needling-crash.toml"
    scenario.write_text(NEEDLING_CRASH)
    path = _crashed_recording(tmp_path, scenario)
    needling = next(t for t in deliveries_from_recording(path) if t.modality == "needling")
    data = read_report(path)
    step = data.steps[-1]
    assert step.modality == "needling" and step.passes_done == needling.passes and step.passes_done >= 1
    assert data.outcome() == "partial" and not data.ended


def test_a_trip_whose_stop_was_written_says_when_it_was_sent(tmp_path: Path) -> None:
    from workstation.session.runner import run_scenario
    from workstation.session.scenario import load_scenario
    from workstation.ui.report_data import read_report

    result = run_scenario(load_scenario(SCENARIOS / "contact-lost-mid-exposure.toml"), tmp_path / "rec",
                          out=lambda _line: None)
    trip = result.summary["trips"][0]
    assert trip["stop_written"] is True and trip["stop"] == "stop written"
    lines = [t for t in read_report(result.recording).trips if "ms after the cause" in t]
    assert lines and all("stop sent" in t for t in lines)
