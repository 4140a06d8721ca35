"""Notes once the session is held (pytest-qt, offscreen). A tester's finding: after the recording failed (disk full)
only End session and STOP could act, yet the note box still took a note and said "Note added to the recording." in
place of the red failure, while the recording was closed and the note only in the log. Now, after the recording
failed, Add note is off; a note that still gets submitted (Return, a race) is refused in words, the failure stays on
screen, and the recording holds no such note. After only the store failed, the recording takes the note."""

from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt

from tests.test_ui_session import TIMEOUT_MS, arm, start_training
from workstation.recording.reader import Recording
from workstation.session.session import SessionError
from workstation.ui.main_window import MainWindow

BEFORE, AFTER = "patient calm before the light", "patient asked about the failure"


def add_note(qtbot, win: MainWindow, text: str) -> None:
    t = win.treatment
    t.note_edit.setText(text)
    qtbot.mouseClick(t.note_button, Qt.MouseButton.LeftButton)


def submit_anyway(win: MainWindow, text: str) -> None:
    """What Return in the field (or a click that raced the button's disabling) does: the view's add_note."""
    win.treatment.note_edit.setText(text)
    win.treatment.note_edit.returnPressed.emit()


def end_and_read_notes(qtbot, win: MainWindow) -> list[str]:
    qtbot.mouseClick(win.treatment.end_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.controller.saved is not None, timeout=TIMEOUT_MS)
    with Recording.open(win.controller.saved.recording) as rec:
        return [e.message for e in rec.events if e.kind == "note"]


def test_after_the_recording_fails_a_note_is_refused_and_the_failure_stays_said(qtbot, window: MainWindow) -> None:
    from workstation.recording import RecordingError

    win = window
    start_training(qtbot, win, "combined-uneventful.toml")
    arm(qtbot, win)
    t = win.treatment
    add_note(qtbot, win, BEFORE)  # the recording works: the note is in it (the read-back below can see notes)
    assert win.messages[-1] == ("info", "Note added to the recording.")
    rig = win.controller.rig
    emulator = rig.emulators["light"]
    qtbot.mouseClick(t.start_step_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: emulator.state().active, timeout=TIMEOUT_MS)
    rig.recorder._on_error(RecordingError("The disk holding the recording is full: recording stopped."))
    qtbot.waitUntil(lambda: not t.step_running, timeout=TIMEOUT_MS)
    # the alarm's message (after the E-stops' ones): what failed, and that only End session is left
    qtbot.waitUntil(lambda: "disk holding the recording is full" in win.messages[-1][1], timeout=TIMEOUT_MS)
    failure = win.messages[-1]
    assert failure[0] == "error" and "cannot treat again" in failure[1], failure
    shown_before = len(win.messages)

    # Add note is off (and the field: Return cannot submit from it), saying why on hover
    qtbot.waitUntil(lambda: not t.note_button.isEnabled(), timeout=TIMEOUT_MS)
    assert not t.note_edit.isEnabled()
    assert "cannot be recorded because the recording failed" in t.note_button.toolTip()
    t.note_edit.setText(AFTER)
    qtbot.mouseClick(t.note_button, Qt.MouseButton.LeftButton)  # a click on the disabled button: nothing
    assert len(win.messages) == shown_before

    # a note submitted anyway is refused in a sentence, as an error that keeps the failure's own words on screen
    submit_anyway(win, AFTER)
    level, text = win.messages[-1]
    assert level == "error", win.messages[-1]
    assert text.startswith("The note cannot be recorded because the recording failed."), text
    assert failure[1] in text, text  # what failed, and End session, are still what the window shows
    assert win.message_bar.current() == (level, text)
    assert t.note_edit.text() == AFTER  # kept, not cleared as if it had been taken
    with pytest.raises(SessionError, match="cannot be recorded because the recording failed"):
        win.controller.add_note(AFTER)  # the controller refuses too, whoever calls it

    # STOP while held: the devices are told to stop, and the window does not say "reset the interlocks to go on"
    qtbot.mouseClick(t.stop_button, Qt.MouseButton.LeftButton)
    level, text = win.messages[-1]
    assert level == "error" and failure[1] in text and "reset the interlocks" not in text, win.messages[-1]

    after_failure = win.messages[shown_before - 1:]
    assert not any(lv == "info" for lv, _m in after_failure), after_failure
    assert not any("added to the recording" in m for _lv, m in after_failure), after_failure

    notes = end_and_read_notes(qtbot, win)
    assert BEFORE in notes, notes
    assert not any(AFTER in n for n in notes), notes


def test_after_only_the_store_fails_a_note_still_goes_into_the_recording(qtbot, window: MainWindow) -> None:
    """The training store failed between steps: the session is held as for the recording (no more treatment), but
    the recording works, so a note of what happened goes into it (the store is completed from the recording); the
    failure stays on screen (seventh session; notes were refused here before)."""
    from workstation.store.connection import StoreWriteFailed

    win = window
    start_training(qtbot, win, "combined-uneventful.toml")
    arm(qtbot, win)
    t = win.treatment
    win.controller.visit._store_failed(StoreWriteFailed("database or disk is full"))  # what _journal does on a failure
    qtbot.waitUntil(lambda: "could not be written (" in win.messages[-1][1], timeout=TIMEOUT_MS)  # the alarm's
    failure = win.messages[-1]
    assert failure[0] == "error" and "cannot treat again" in failure[1], failure
    assert not t.start_step_button.isEnabled() and win.controller.note_refused() is None
    qtbot.waitUntil(t.note_button.isEnabled, timeout=TIMEOUT_MS)
    add_note(qtbot, win, AFTER)
    level, text = win.messages[-1]
    assert level == "error" and text.startswith("Note added to the recording.") and failure[1] in text, text
    assert t.note_edit.text() == ""
    assert AFTER in end_and_read_notes(qtbot, win)


def test_a_note_between_steps_still_goes_into_the_recording(qtbot, window: MainWindow) -> None:
    """Not held: the note box works as before, and after End session a note is refused (the recording is closed)."""
    win = window
    start_training(qtbot, win, "combined-uneventful.toml")
    arm(qtbot, win)
    t = win.treatment
    assert t.note_button.isEnabled() and t.note_edit.isEnabled() and t.note_button.toolTip() == ""
    add_note(qtbot, win, BEFORE)
    assert win.messages[-1] == ("info", "Note added to the recording.") and t.note_edit.text() == ""
    assert BEFORE in end_and_read_notes(qtbot, win)
    with pytest.raises(SessionError, match="session has ended"):
        win.controller.add_note(AFTER)
    qtbot.waitUntil(lambda: not t.note_button.isEnabled(), timeout=TIMEOUT_MS)  # once the end reached the window
