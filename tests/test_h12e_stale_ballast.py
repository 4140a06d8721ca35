"""A killed recorder's 8 MB reserve file (`format.ballast_path`) is removed without a store too (fresh tester of
issue 12): by `inspect` on the recording, and by the next recorder opening a file in the same recordings folder,
each saying so; never while the recording's writer is alive (a live SWMR writer holds the file open:
`mark.held_by_a_process`). Real processes killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers_recording import meta

from workstation.recording.format import ballast_path, recording_of_ballast
from workstation.recording.mark import ORPHAN_BALLAST_AGE_S, remove_stale_ballast, remove_stale_ballasts
from workstation.recording.writer import SessionRecorder

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "seeds" / "scenarios"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True, timeout=180,
                          cwd=cwd, env=ENV)


def _readable(rec_dir: Path) -> bool:
    from workstation.recording.reader import Recording

    found = list(rec_dir.glob("*/*.h5"))
    try:
        with Recording.open(found[0]) as rec:
            return len(rec.events) > 0
    except Exception:  # noqa: BLE001 - not yet there, or not yet under SWMR
        return False


def _crashed_without_store(tmp_path: Path) -> Path:
    """A headless session without --store, killed with SIGKILL once its recorder is writing."""
    rec_dir = tmp_path / "rec"
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "session", "--simulate", "--scenario",
                             str(SCENARIOS / "combined-uneventful.toml"), "--record", str(rec_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path, env=ENV)
    try:
        deadline = time.monotonic() + 120
        while not _readable(rec_dir) or not list(rec_dir.glob("*/.*.ballast")):  # writing under SWMR
            assert proc.poll() is None and time.monotonic() < deadline, "the session ended before it was killed"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    [h5] = rec_dir.glob("*/*.h5")
    assert ballast_path(h5).stat().st_size >= 8 * 2**20  # what the tester found: 8 MB left with no store to clean it
    return h5


def test_the_ballast_path_names_its_recording():
    h5 = Path("/r/2026-11-30/0b0e.h5")
    assert recording_of_ballast(ballast_path(h5)) == h5


def test_a_live_writer_keeps_its_ballast_and_once_killed_it_is_removed_and_said(tmp_path):
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "helpers_recording.py"), str(tmp_path)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT, env=ENV)
    try:
        line = proc.stdout.readline()
        assert line.startswith("path "), line
        h5 = Path(line.split(" ", 1)[1].strip())
        while "flushed" not in proc.stdout.readline():
            pass
        assert ballast_path(h5).is_file()
        assert remove_stale_ballasts(tmp_path) == [] and ballast_path(h5).is_file()  # its writer is alive
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        proc.stdout.close()
    [said] = remove_stale_ballasts(tmp_path)
    assert not ballast_path(h5).exists() and h5.is_file()
    assert "emptied the 8 MB reserve file" in said and h5.name in said
    assert remove_stale_ballast(h5) is None  # nothing left: said once


def test_a_recorder_in_this_process_keeps_its_ballast_while_another_folder_scan_runs(tmp_path):
    rec = SessionRecorder.create(tmp_path, meta(), min_free_bytes=0)
    try:
        assert ballast_path(rec.path).is_file()
        assert remove_stale_ballasts(tmp_path) == [] and ballast_path(rec.path).is_file()
    finally:
        rec.close()
    assert not ballast_path(rec.path).exists()


def test_a_ballast_without_its_recording_is_removed_only_once_old(tmp_path):
    day = tmp_path / "2026-11-30"
    day.mkdir()
    ballast = ballast_path(day / "0b0e.h5")
    ballast.write_bytes(b"\xff" * 1024)
    assert remove_stale_ballasts(tmp_path) == [] and ballast.is_file()  # a recorder may be creating it right now
    old = time.time() - ORPHAN_BALLAST_AGE_S - 5
    os.utime(ballast, (old, old))
    [said] = remove_stale_ballasts(tmp_path)
    assert not ballast.exists() and "0b0e.h5" in said


def test_inspect_removes_a_killed_runs_ballast_without_a_store_and_says_so(tmp_path):
    h5 = _crashed_without_store(tmp_path)
    shown = _run("inspect", str(h5), cwd=tmp_path)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "note: emptied the 8 MB reserve file a stopped recorder left beside" in shown.stdout
    assert not ballast_path(h5).exists() and h5.is_file()
    again = _run("inspect", str(h5), cwd=tmp_path)
    assert "reserve file" not in again.stdout


def test_the_next_session_in_the_folder_removes_a_killed_runs_ballast_and_says_so(tmp_path):
    h5 = _crashed_without_store(tmp_path)
    nxt = _run("session", "--simulate", "--scenario", str(SCENARIOS / "combined-uneventful.toml"), "--record",
               str(tmp_path / "rec"), cwd=tmp_path)
    out = nxt.stdout + nxt.stderr
    assert nxt.returncode in (0, 3), out  # the session's own outcome is not the subject (a loaded machine may trip)
    assert "emptied the 8 MB reserve file" in out and h5.name in out, out
    assert not ballast_path(h5).exists() and h5.is_file()
    assert not list((tmp_path / "rec").glob("*/.*.ballast"))  # the new session's own, removed at its close
