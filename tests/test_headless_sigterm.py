"""A headless run (`main.py session`, no window) that receives SIGTERM (or Ctrl+C) mid-exposure prints the summary a
normal end or STOP prints, with its cause ("terminated by a signal (SIGTERM)"), then exits 143 (130), its recording
closed with its checksum and its store row closed with that cause (fresh tester of Cicatrix: it printed nothing).

A real subprocess in simulation mode, signalled while the light is emitting."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers_load import with_internal_error
from test_recovery_signals import _interrupt_mid_exposure, _scenario_without_crash

from workstation.recording.format import checksum_path
from workstation.store import ClinicStore

ROOT = Path(__file__).resolve().parents[1]


def _signalled_mid_exposure(tmp_path: Path, signum: int) -> tuple[int, str, str, Path]:
    done, store = _interrupt_mid_exposure(tmp_path, signum)  # one 260 mJ/cm² exposure of about 2.7 s
    return done.returncode, done.stdout, done.stderr, store


@pytest.mark.parametrize(("signum", "code", "cause"), [
    (signal.SIGTERM, 143, "terminated by a signal (SIGTERM)"),
    (signal.SIGINT, 130, "interrupted (Ctrl+C)"),
    # its terminal closed (an ssh connection dropped): it died with the file unclosed (eleventh session's tester)
    (signal.SIGHUP, 129, "terminated by a signal (SIGHUP)"),
])
def test_a_signalled_headless_run_prints_its_summary_then_exits(tmp_path: Path, signum: int, code: int,
                                                                cause: str) -> None:
    returncode, out, err, store = _signalled_mid_exposure(tmp_path, signum)
    assert returncode == code, out + err
    summary = out.split("\n\n", 1)[1].splitlines()  # the summary follows one empty line, as at a normal end
    assert summary[0] == f"session partial: {cause}, the program was closed during the session", summary
    assert summary[1] == "steps done: 0 of 1", summary
    # the step the signal cut short, as any stop ends one (twelfth session's tester: a signal left it out)
    interrupted = re.fullmatch(r"  area 1 light: interrupted, ([\d.]+) mJ/cm²", summary[2])
    assert interrupted, summary
    delivered = re.fullmatch(r"  delivered, as the recording shows: light on upper-arm: ([\d.]+) mJ/cm²", summary[3])
    assert delivered, summary
    recorded = re.fullmatch(r"recording: (.+\.h5) \(sha256 ([0-9a-f]{64})\)", summary[4])
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
    assert float(interrupted[1]) == pytest.approx(float(delivered[1]), abs=2.0)  # the session's own, the file's


def _holds_open(pid: int, path: Path) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:  # the process ended, or one of its descriptors closed while listed
        return False


@pytest.mark.parametrize(("signum", "code", "cause"), [
    (signal.SIGTERM, 143, "terminated by a signal (SIGTERM)"),
    (signal.SIGINT, 130, "interrupted (Ctrl+C)"),
    # its terminal closed (an ssh connection dropped): it died with the file unclosed (eleventh session's tester)
    (signal.SIGHUP, 129, "terminated by a signal (SIGHUP)"),
])
def test_a_signal_while_planning_says_not_started(tmp_path: Path, signum: int, code: int, cause: str) -> None:
    """Signalled before treatment, while the visit is planned (the store opened, the scenario's patient entered, the
    emulators started): one line says nothing was started and why, then the same exit code (it printed nothing).
    The test holds the training store's write lock, so the run cannot get past planning until the signal."""
    store = tmp_path / "training.sqlite3"
    with ClinicStore.open(store, training=True):
        pass
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # every write waits (up to the store's 5 s busy timeout)
    cmd = [sys.executable, str(ROOT / "main.py"), "session", "--simulate", "--scenario",
           str(_scenario_without_crash(tmp_path)), "--record", str(tmp_path / "rec"), "--store", str(store)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not _holds_open(proc.pid, store) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # the store is opened inside the visit's planning, after the signal handler is set
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        holder.rollback()
        holder.close()
    assert proc.returncode == code, with_internal_error(out + err)
    assert out.splitlines() == [f"outcome: not started ({cause}); exit code {code}"], out + err
    assert "Traceback" not in err and "SystemExit" not in err, err
    with sqlite3.connect(store) as c:
        assert c.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
    assert not list((tmp_path / "rec").rglob("*.h5"))  # nothing recorded: nothing was given
