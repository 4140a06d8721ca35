"""A killed session's reserve file, given back by another command before the next start, still reads as the kill it
was (a fresh tester of issue 12). `inspect` on the crashed recording, or the next session recording into the same
folder, removed the recorder's hidden reserve file; the next start then took the recording, with no end and no
reserve file, for one whose recorder failed on a full disk, and wrote "aborted: its recording stopped on a write
failure" into the store for good. Those commands now leave the reserve emptied under another name
(`format.freed_ballast_path`), which crash recovery reads as the kill and removes. Real SIGKILLs, real processes,
and the window with pytest-qt."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_load import run_until_killed
from test_ui_recovery import said
from test_ui_session import start_training

from workstation.recording.format import ballast_path, freed_ballast_path
from workstation.session.journal import WRITE_FAILED
from workstation.store import ClinicStore

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "seeds" / "scenarios"
HOW = ["inspect", "the next session in the folder"]


def _env() -> dict[str, str]:  # at the call: conftest's fixtures set the test's own folders in the environment
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _main(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=180, cwd=ROOT, env=_env())


def _killed(tmp_path: Path) -> tuple[list[str], Path, Path]:
    """crash-and-restart.toml run headless with a store: SIGKILLed mid-exposure. Returns its command, its store and
    its recording."""
    store_path, rec = tmp_path / "store.sqlite3", tmp_path / "rec"
    cmd = [sys.executable, str(ROOT / "main.py"), "session", "--simulate", "--scenario",
           str(SCENARIOS / "crash-and-restart.toml"), "--record", str(rec), "--store", str(store_path)]
    first = run_until_killed(cmd, [store_path, rec], timeout=120, cwd=ROOT, env=_env())
    assert first.returncode == -signal.SIGKILL, first.stdout + first.stderr
    with ClinicStore.open(store_path, training=True) as store:
        [row] = store.in_progress_sessions()
    h5 = Path(row["recording_path"])
    assert ballast_path(h5).stat().st_size >= 8 * 2**20  # the killed recorder's reserve
    return cmd, store_path, h5


def _give_the_reserve_back(how: str, h5: Path, tmp_path: Path) -> None:
    if how == "inspect":
        done = _main("inspect", str(h5))
        assert done.returncode == 0, done.stdout + done.stderr
    else:  # another session recording into the same folder, with another store
        done = _main("session", "--simulate", "--scenario", str(SCENARIOS / "combined-uneventful.toml"), "--record",
                     str(h5.parent.parent), "--store", str(tmp_path / "other.sqlite3"))
        assert done.returncode in (0, 3), done.stdout + done.stderr  # its own outcome is not the subject
    assert "emptied the 8 MB reserve file" in done.stdout and h5.name in done.stdout, done.stdout
    freed = freed_ballast_path(h5)
    assert not ballast_path(h5).exists() and freed.is_file() and freed.stat().st_size == 0  # room back, kill kept


def _state(store_path: Path) -> list[tuple]:
    with sqlite3.connect(store_path) as c:
        return c.execute("SELECT id, state, outcome_note FROM sessions ORDER BY id").fetchall()


@pytest.mark.parametrize("how", HOW)
def test_a_kill_whose_reserve_another_command_gave_back_is_still_closed_as_a_crash(tmp_path: Path, how: str) -> None:
    cmd, store_path, h5 = _killed(tmp_path)
    _give_the_reserve_back(how, h5, tmp_path)
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT, env=_env())
    said_there = second.stdout + second.stderr
    assert "closed as interrupted by a crash" in said_there and WRITE_FAILED not in said_there, said_there
    assert _state(store_path)[0] == (1, "crashed", "interrupted by a crash")
    assert not freed_ballast_path(h5).exists() and not ballast_path(h5).exists()  # recovery removed what was left


def test_through_the_window_a_kill_inspected_before_the_restart_is_closed_as_a_crash(qtbot, window,
                                                                                    tmp_path: Path) -> None:
    _cmd, store_path, h5 = _killed(tmp_path)  # the window's own store (conftest: tmp_path / "store.sqlite3")
    _give_the_reserve_back("inspect", h5, tmp_path)
    start_training(qtbot, window, "crash-and-restart.toml")
    assert said(window, "closed as interrupted by a crash") and not said(window, WRITE_FAILED)
    assert _state(store_path)[0][:2] == (1, "crashed")
    assert not freed_ballast_path(h5).exists()


def test_an_emptied_reserve_whose_recording_is_gone_is_removed_by_the_next_recorder(tmp_path: Path) -> None:
    from helpers_recording import write_session

    rec = tmp_path / "rec"
    (rec / "2026-11-30").mkdir(parents=True)
    gone = freed_ballast_path(rec / "2026-11-30" / "0b0e.h5")
    gone.write_bytes(b"")
    kept = write_session(rec, 0.2)  # a recorder opening in the folder: its scan removes the orphan only
    freed_ballast_path(kept).write_bytes(b"")
    write_session(rec, 0.2)
    assert not gone.exists() and freed_ballast_path(kept).exists()


def test_a_restart_that_found_the_store_busy_leaves_the_kill_readable_for_the_next(tmp_path: Path) -> None:
    """A second fresh tester of issue 12: the restart found the store held by another program for more than 5 s and
    stopped in words, but its crash recovery had already sealed the recording and used up the reserve file; the next
    start then stored the crash as a write failure. The kill's trace stays until the store holds the verdict."""
    cmd, store_path, h5 = _killed(tmp_path)
    holder = sqlite3.connect(store_path, isolation_level=None, timeout=1)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another program holds the store's write lock
        busy = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=ROOT, env=_env())
    finally:
        holder.rollback()
        holder.close()
    said_busy = busy.stdout + busy.stderr
    assert busy.returncode == 2 and "in use by another program" in said_busy and "Traceback" not in said_busy, \
        said_busy
    assert _state(store_path)[0][1] == "in_progress" and freed_ballast_path(h5).exists()  # the kill, still readable
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT, env=_env())
    assert "closed as interrupted by a crash" in second.stdout + second.stderr, second.stdout + second.stderr
    assert _state(store_path)[0] == (1, "crashed", "interrupted by a crash")
    assert not freed_ballast_path(h5).exists() and not ballast_path(h5).exists()


@pytest.mark.parametrize("left", ["stopped after its recovery", "reserve file deleted by hand",
                                  "reserve file deleted by hand, then inspect", "reserve file deleted by hand, then verify"])
def test_a_kill_stays_a_crash_whatever_happened_to_its_files_before_the_store_was_written(tmp_path: Path,
                                                                                        left: str) -> None:
    """The recovery stopped after sealing the recording and before writing the store (a kill or a power cut there,
    as a tester's wrapper did), or the reserve file deleted by hand: the next start still reads the kill, from the
    trace or from the file's own "open for writing" mark, and closes the session as a crash."""
    from workstation.session import journal

    _cmd, store_path, h5 = _killed(tmp_path)
    if left.startswith("reserve file deleted by hand"):
        ballast_path(h5).unlink()
        if left.endswith(("inspect", "verify")):  # which clear the killed recorder's mark (a third fresh tester)
            _main(left.rsplit(" ", 1)[1], str(h5))
            assert freed_ballast_path(h5).exists()  # the kill's trace, left before the mark was cleared
    else:
        with ClinicStore.open(store_path, training=True) as store:
            real = store.close_session

            def power_cut(*_a, **_k):
                raise KeyboardInterrupt("the power went off")

            store.close_session = power_cut
            with pytest.raises(KeyboardInterrupt):
                journal.close_crashed_sessions(store)
            store.close_session = real
        assert not ballast_path(h5).exists() and freed_ballast_path(h5).exists()  # sealed, the kill kept
    with ClinicStore.open(store_path, training=True) as store:
        [closed] = journal.close_crashed_sessions(store)
    assert closed.note.startswith("interrupted by a crash") and WRITE_FAILED not in closed.note, closed.note
    assert _state(store_path)[0][1] == "crashed"
    assert not freed_ballast_path(h5).exists() and not ballast_path(h5).exists()
