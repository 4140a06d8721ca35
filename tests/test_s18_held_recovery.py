"""A crashed session's recording that another program holds when crash recovery runs (the fifteenth session's fresh
tester of issue 12): the recovery could not clear HDF5's "open for writing" mark, yet wrote the .sha256 and .sig
over the marked bytes, so h5dump never opened the file and nothing could clear the mark later (a signed file is never
touched). Now the file is journalled (its doses count) but left unsealed and unindexed, and the words say why; once
the reader lets go, `recording sync` or the next start seals it, and the tools open it. Real processes: the runner
killed by its scenario's SIGKILL, a reader holding the file with the project's own Recording.open, the restart, the
sync; the window (pytest-qt, offscreen) for the next start."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_load import run_until_killed
from helpers_recording import reader_holding
from test_ui_session import start_training

from workstation.recording.format import sidecar_paths
from workstation.recording.mark import open_mark
from workstation.recording.summary import check_checksum
from workstation.session.journal import deliveries_from_recording
from workstation.store import ClinicStore
from workstation.ui.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "seeds" / "scenarios" / "crash-and-restart.toml"
HELD = "is open in another program, so it is not yet checksummed, signed or indexed"


def _env() -> dict[str, str]:  # at call time: the conftest gives each test its own keys and settings
    return {**os.environ, "PYTHONUNBUFFERED": "1", "QT_QPA_PLATFORM": "offscreen"}


def _killed(tmp_path: Path) -> tuple[Path, Path, list[str], float]:
    """The headless runner killed mid-exposure by its scenario: (store, recording, its command, light dose shown
    by the recording in mJ/cm²)."""
    store, rec = tmp_path / "training.sqlite3", tmp_path / "rec"
    cmd = [sys.executable, str(ROOT / "main.py"), "session", "--simulate", "--scenario", str(SCENARIO), "--record",
           str(rec), "--store", str(store)]
    first = run_until_killed(cmd, [store, rec], timeout=120, cwd=ROOT, env=_env())
    assert first.returncode == -signal.SIGKILL, first.stdout + first.stderr
    with ClinicStore.open(store, training=True) as s:
        [row] = s.in_progress_sessions()
    h5 = Path(row["recording_path"])
    [light] = deliveries_from_recording(h5)
    assert open_mark(h5) and light.dose_mj_cm2 > 0
    return store, h5, cmd, light.dose_mj_cm2


def _unsealed(store: Path, h5: Path, dose: float | None, *, marked: bool = True, said: str = HELD) -> None:
    """Left unsealed (as the crash left it when `marked`) and not indexed, but closed as crashed, its note saying
    `said`, with the recording's light dose counted (`dose`, mJ/cm²), or none when it could not be read (None)."""
    assert open_mark(h5) == marked and not any(p.exists() for p in sidecar_paths(h5))
    with ClinicStore.open(store, training=True) as s:
        [hist] = s.history(1)
        assert hist.state == "crashed" and s.recording(hist.id) is None
        light = hist.treatment(1, "light")
        assert light is None if dose is None else light.dose_mj_cm2 == pytest.approx(dose, abs=0.01)
        assert said in s.session_state(hist.id)["outcome_note"]


def _sealed(store: Path, h5: Path) -> None:
    assert not open_mark(h5)
    check = check_checksum(h5)
    assert check.intact and "signed by" in check.text, check.text
    with ClinicStore.open(store, training=True) as s:
        assert s.recording_path(1) == h5 and s.verify_recording(1)
        assert "its recording was recovered on" in s.session_state(1)["outcome_note"]
    if shutil.which("h5dump"):  # CI installs Debian's hdf5-tools
        dumped = subprocess.run(["h5dump", "-H", str(h5)], capture_output=True, text=True, timeout=60)
        assert dumped.returncode == 0, dumped.stderr[-800:]


def _sync(store: Path, share: Path, *more: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "recording", "sync", *more, "--training",
                           "--store", str(store), "--clinic-recordings", str(share)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=_env())


def test_a_held_recording_is_left_unsealed_said_why_and_sealed_by_sync_once_it_is_free(tmp_path):
    store, h5, cmd, dose = _killed(tmp_path)
    share = tmp_path / "share"
    share.mkdir()
    with reader_holding(h5):
        restart = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT, env=_env())
        assert "Traceback" not in restart.stderr, restart.stderr[-2000:]
        said = restart.stdout + restart.stderr
        assert "closed as interrupted by a crash, with the doses its recording shows; its recording " + HELD in said
        assert "close that program, and the next start or `" in said, said
        _unsealed(store, h5, dose)
        listed = _sync(store, share, "--list")
        assert listed.returncode == 1 and HELD in listed.stdout, listed.stdout + listed.stderr
        waiting = _sync(store, share, "--once")
        assert waiting.returncode == 1, waiting.stdout + waiting.stderr
        assert "1 recording waiting to copy" in waiting.stdout and HELD in waiting.stdout, waiting.stdout
        assert "nothing is left" not in waiting.stdout and "Traceback" not in waiting.stderr
        _unsealed(store, h5, dose)
        assert list(share.iterdir()) == []
    synced = _sync(store, share, "--once")
    assert synced.returncode == 0 and "1 recording copied" in synced.stdout, synced.stdout + synced.stderr
    _sealed(store, h5)
    with ClinicStore.open(store, training=True) as s:
        copy = s.shared_path(1)
        assert copy is not None and check_checksum(copy).intact


def _window(qtbot, tmp_path: Path, store: Path) -> MainWindow:
    win = MainWindow(recordings_dir=tmp_path / "window-recordings", store_path=store)
    qtbot.addWidget(win)
    win.show()
    return win


def test_the_window_says_why_and_its_next_start_seals_the_recording_once_it_is_free(qtbot, tmp_path):
    store, h5, _cmd, dose = _killed(tmp_path)
    with reader_holding(h5):
        win = _window(qtbot, tmp_path, store)
        try:
            start_training(qtbot, win, SCENARIO.name)
            told = [m[1] for m in win.messages if "closed as interrupted by a crash" in m[1]]
            assert len(told) == 1 and HELD in told[0] and "Traceback" not in told[0], win.messages
            level, shown = win.message_bar.current()  # the warning is the line left showing, not the plan's info
            assert level == "warning" and HELD in shown, (level, shown)
            win.grab().save(str(tmp_path / "held-warning.png"))  # for a person to look at when it fails
            _unsealed(store, h5, dose)
        finally:
            win.close()
    win = _window(qtbot, tmp_path, store)  # the next start, the reader gone
    try:
        start_training(qtbot, win, SCENARIO.name)
        assert not any("closed as interrupted by a crash" in m[1] for m in win.messages)  # told once, before
    finally:
        win.close()
    _sealed(store, h5)
