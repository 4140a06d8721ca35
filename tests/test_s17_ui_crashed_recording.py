"""Through the window (pytest-qt, offscreen): room B's window says a crashed session's recording is still on room
2's disk, not yet copied, instead of nothing; room A's window, whose disk holds it, recovers it (checksum,
signature, index) and copies it to the share, and its line clears. A real recording, real folders, a real store."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

from helpers_recording import write_session

from workstation.protocols import load_library
from workstation.recording.format import sidecar_paths
from workstation.recording.summary import check_checksum
from workstation.session.journal import close_crashed_sessions
from workstation.session.visit import Places
from workstation.store import ClinicStore
from workstation.ui.main_window import MainWindow

TIMEOUT_MS = 15_000


def _dead_process_token() -> str:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return f"{proc.pid}:1"


def test_room_b_window_says_where_the_recording_is_and_room_a_window_recovers_and_copies_it(qtbot, tmp_path):
    root, share, db = tmp_path / "recordings", tmp_path / "share", tmp_path / "clinic.sqlite3"
    share.mkdir()
    local = write_session(root, 0.5, mode="clinical")
    for sidecar in sidecar_paths(local):  # a killed recorder writes neither
        sidecar.unlink()
    dead = _dead_process_token()
    with ClinicStore.open(db, training=False, recordings_root=root) as store:
        p = store.create_patient("CX-00CRASH2")
        area = store.add_area(p.id, "left cheek", "face", "hypopigmented_scar", 3.5, "III")
        course = store.create_course(p.id, load_library().get("hypopigmented-scar-light"), [area.id],
                                     dt.date(2026, 3, 1))
        store.take_lease(course.id, room="room 2", account="dr-a", process=dead,
                         now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))  # long expired: room 2 crashed
        sid = store.add_session(course.id, dt.date.today(), state="in_progress", process=dead, recording_path=local)
    hidden = tmp_path / "room-2-disk-not-here"
    root.rename(hidden)
    with ClinicStore.open(db, training=False) as store:
        store.workstation = "room-b"
        [closed] = close_crashed_sessions(store)  # room B's start
    assert "still on room 2's disk, not yet copied" in closed.note

    win = MainWindow(recordings_dir=tmp_path / "b-recordings", places=Places(clinic_store=db, clinic_recordings=share))
    qtbot.addWidget(win)
    win.show()
    try:
        line = win.share_status
        qtbot.waitUntil(lambda: line.isVisible(), timeout=TIMEOUT_MS)
        assert line.text() == f"Session 1 of the course (record no. {sid}): recording still on room 2's disk, not yet " \
            "copied."
        assert line.toolTip() == line.text() and win.isEnabled()
    finally:
        win.close()

    hidden.rename(root)  # room 2's own window opens, its disk there
    win = MainWindow(recordings_dir=root, places=Places(clinic_store=db, clinic_recordings=share))
    qtbot.addWidget(win)
    win.show()
    try:
        line = win.share_status
        qtbot.waitUntil(lambda: line.status is not None and line.status.copied == 1, timeout=TIMEOUT_MS)
        assert not line.isVisible() and line.text() == ""
    finally:
        win.close()
    with ClinicStore.open(db, training=False) as store:
        assert store.recording_path(sid) == local and store.verify_recording(sid)
        assert check_checksum(local).intact and check_checksum(store.shared_path(sid)).intact
        assert "its recording was recovered on" in store.session_state(sid)["outcome_note"]
