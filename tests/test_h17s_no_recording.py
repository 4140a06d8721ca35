"""Issue 17's fresh tester, item 5: a crashed room's session that never got a recording (its process killed after it
took the course's lease and opened its session, before the recorder opened) is closed saying so, with the doses its
journal shows, never "with the doses its recording shows": in the store's outcome note, in the refusal of the start
that took the lease over, and in the window's message. A real process killed with SIGKILL; both engines."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

import pytest

from workstation.errors import UserError
from workstation.protocols import load_library
from workstation.session.course_lease import CourseLease
from workstation.session.journal import close_crashed_sessions
from workstation.store import ClinicStore

REPO = Path(__file__).resolve().parents[1]

RACER = textwrap.dedent("""
    import sys, time
    from datetime import date
    sys.path.insert(0, {repo!r})
    from workstation.session.course_lease import CourseLease
    from workstation.session.journal import process_token
    from workstation.store import ClinicStore
    path, course = sys.argv[1], int(sys.argv[2])
    store = ClinicStore.open(path, training=True)
    lease = CourseLease.take(store, course, "dr-a", room="room 2", plan_version=store.course_version(course))
    sid = store.add_session(course, date.today(), state="in_progress", process=process_token())
    print("started", sid, flush=True)  # killed here: before its recorder opened, nothing journalled
    time.sleep(600)
""")


def _course(store: ClinicStore) -> int:
    p = store.create_patient("P-0017")
    area = store.add_area(p.id, "left cheek", "face", "hypopigmented_scar", 3.5, "III")
    return store.create_course(p.id, load_library().get("hypopigmented-scar-light"), [area.id],
                               date.today() - timedelta(days=30)).id


def _killed_start(store_url: str, course: int) -> int:
    """A room's start, in a real process killed with SIGKILL once its session is open; returns the session id."""
    racer = subprocess.Popen([sys.executable, "-c", RACER.format(repo=str(REPO)), store_url, str(course)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = racer.stdout.readline()
        assert line.startswith("started"), racer.stderr.read() if racer.poll() is not None else line
        racer.send_signal(signal.SIGKILL)
        racer.wait(10)
    finally:
        if racer.poll() is None:
            racer.kill()
        racer.stdout.close()
        racer.stderr.close()
    return int(line.split()[1])


NO_RECORDING = ("interrupted by a crash; it had no recording (the program stopped before its recorder opened), so it "
                "is closed with the doses the journal shows: 0 mJ/cm² of light and no needling pass")


def test_a_killed_start_with_no_recording_is_closed_saying_so_when_its_lease_is_taken_over(store_url):
    with ClinicStore.open(store_url, training=True) as store:
        course = _course(store)
    sid = _killed_start(store_url, course)
    with ClinicStore.open(store_url, training=True) as store:
        assert store.session_state(sid)["state"] == "in_progress" and store.recording(sid) is None
        with pytest.raises(UserError) as refused:
            CourseLease.take(store, course, "dr-b", room="room 1", plan_version=store.course_version(course))
        said = str(refused.value)
        assert NO_RECORDING in said and "in room 2" in said and "recording shows" not in said
        state = store.session_state(sid)
        assert (state["state"], state["outcome_note"]) == ("crashed", NO_RECORDING)
        [rec] = [r for r in store.history(course) if r.id == sid]
        assert not rec.treatments  # nothing invented


def test_the_window_does_not_claim_a_recording_for_a_crashed_session_that_had_none(qtbot, tmp_path):
    from workstation.ui.main_window import MainWindow

    db = str(tmp_path / "training.sqlite3")
    with ClinicStore.open(db, training=True) as store:
        course = _course(store)
    sid = _killed_start(db, course)
    with ClinicStore.open(db, training=True) as store:
        closed = close_crashed_sessions(store)  # as the visit service does when the window opens its store
    assert [(c.session_id, c.from_recording, c.note) for c in closed] == [(sid, False, NO_RECORDING)]
    win = MainWindow(recordings_dir=tmp_path / "recordings")
    qtbot.addWidget(win)
    win.show()
    try:
        win.controller.crashed = closed
        win._tell_crashed()
        [message] = [m[1] for m in win.messages if "left open by a program that stopped" in m[1]]
        assert NO_RECORDING in message and "recording shows" not in message
    finally:
        win.close()
