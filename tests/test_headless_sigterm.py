"""A headless run (`main.py session`, no window) that receives SIGTERM (or Ctrl+C) mid-exposure prints the summary a
normal end or STOP prints, with its cause ("terminated by a signal (SIGTERM)"), then exits 143 (130), its recording
closed with its checksum and its store row closed with that cause (fresh tester of Cicatrix: it printed nothing).

A real subprocess in simulation mode, signalled while the light is emitting."""

from __future__ import annotations

import re
import signal
import sqlite3
from pathlib import Path

import pytest
from test_recovery_signals import _interrupt_mid_exposure

from workstation.recording.format import checksum_path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "seeds" / "scenarios"


def _light_only(tmp_path: Path) -> Path:
    """crash-and-restart.toml without its SIGKILL: one 260 mJ/cm² exposure of about 2.7 s."""
    path = tmp_path / "light-only.toml"
    path.write_text((SCENARIOS / "crash-and-restart.toml").read_text().split("[[events]]")[0])
    return path


def _signalled_mid_exposure(tmp_path: Path, signum: int) -> tuple[int, str, str, Path]:
    done, store = _interrupt_mid_exposure(tmp_path, signum, scenario=_light_only(tmp_path))
    return done.returncode, done.stdout, done.stderr, store


@pytest.mark.parametrize(("signum", "code", "cause"), [
    (signal.SIGTERM, 143, "terminated by a signal (SIGTERM)"),
    (signal.SIGINT, 130, "interrupted (Ctrl+C)"),
])
def test_a_signalled_headless_run_prints_its_summary_then_exits(tmp_path: Path, signum: int, code: int,
                                                                cause: str) -> None:
    returncode, out, err, store = _signalled_mid_exposure(tmp_path, signum)
    assert returncode == code, out + err
    summary = out.split("\n\n", 1)[1].splitlines()  # the summary follows one empty line, as at a normal end
    assert summary[0] == f"session partial: {cause}, the program was closed during the session", summary
    assert summary[1] == "steps done: 0 of 1", summary
    delivered = re.fullmatch(r"  delivered, as the recording shows: light on upper-arm: ([\d.]+) mJ/cm²", summary[2])
    assert delivered, summary
    recorded = re.fullmatch(r"recording: (.+\.h5) \(sha256 ([0-9a-f]{64})\)", summary[3])
    assert recorded, summary
    assert summary[-1] == (f"outcome: partial, stopped early: {cause}, so the scenario did not run to its end; "
                           f"exit code {code}"), summary
    assert "BAD_STATE" not in out and "SystemExit" not in out + err and "Traceback" not in out + err
    # what it printed is what was kept: the recording closed with that checksum, the store's row with that cause
    path = Path(recorded[1])
    assert checksum_path(path).read_text().split()[0] == recorded[2]
    with sqlite3.connect(store) as c:
        [(state, note, recording)] = c.execute("SELECT state, outcome_note, recording_path FROM sessions").fetchall()
        [(dose,)] = c.execute("SELECT dose_mj_cm2 FROM treatments").fetchall()
    assert state == "partial" and note == f"{cause}, the program was closed during the session"
    assert Path(recording) == path and 0 < float(delivered[1]) < 260
    assert float(delivered[1]) == pytest.approx(dose, abs=0.01)
