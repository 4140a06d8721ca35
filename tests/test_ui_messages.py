"""The message area is one line for a message that fits one (a longer one wraps: tests/test_s17_message_bar.py), the
newest replaces the one
shown (a success replaces the error it answers), the earlier ones are on hover and in the log popup; and the words
a user reads come from one table: no identifier, pty path or library text reaches the screen."""

from __future__ import annotations

from PyQt6.QtCore import Qt

from drivers.codes import DisconnectReason, InterlockCause, LinkEvent
from workstation.bus import Event, now_s
from workstation.protocols.model import LESION_TYPES
from workstation.ui.main_window import MainWindow
from workstation.ui.wording import (
    FIELD_NAMES,
    INTERLOCK_NAMES,
    LESION_NAMES,
    count,
    event_sentence,
    field_change,
    quantity,
    scrub,
)


def test_one_line_messages_never_move_the_page(qtbot, window: MainWindow) -> None:
    win = window
    page_y = win.pages.mapTo(win, win.pages.rect().topLeft()).y()
    stop_y = win.start_page.mapTo(win, win.start_page.rect().topLeft()).y()
    heights = set()
    for text, level in (("short", "info"), ("A longer error, still one line.", "error"),
                        ("Line one.\nLine two.", "warning"), ("", "info")):
        win.notify(text, level)
        qtbot.wait(10)
        heights.add(win.message_bar.height())
        assert win.pages.mapTo(win, win.pages.rect().topLeft()).y() == page_y
        assert win.start_page.mapTo(win, win.start_page.rect().topLeft()).y() == stop_y
    assert len(heights) == 1
    assert "\n" not in win.message.text()
    assert win.minimumSizeHint().width() < 1280  # a long message never widens the window


def test_the_newest_message_replaces_the_error_and_history_is_kept(qtbot, window: MainWindow) -> None:
    win = window
    win.notify("Pseudonym 'Jane Doe' is not valid.", "error")
    assert win.message_bar.current() == ("error", "Pseudonym 'Jane Doe' is not valid.")
    assert win.message.text().startswith("Error:")  # the level in words, not only in colour
    win.notify("Patient P-0042 created.", "info")
    assert win.message_bar.current() == ("info", "Patient P-0042 created.")
    assert "Jane Doe" not in win.message.text()
    tip = win.message.toolTip()
    assert tip.index("P-0042 created") < tip.index("Jane Doe")  # newest first
    qtbot.mouseClick(win.message_bar.log_button, Qt.MouseButton.LeftButton)
    assert win.message_bar.log.isVisible() and win.message_bar.log.count() == 2
    assert "P-0042" in win.message_bar.log.item(0).text()
    # closable without a window manager (v15 finding 12): a panel inside the window, not a popup
    bar = win.message_bar
    assert bar.log_panel.parentWidget() is win and not bar.log_panel.isWindow()
    qtbot.mouseClick(bar.log_button, Qt.MouseButton.LeftButton)  # the button again
    assert not bar.log.isVisible()
    qtbot.mouseClick(bar.log_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(bar.close_log_button, Qt.MouseButton.LeftButton)  # its Close button
    assert not bar.log.isVisible()
    qtbot.mouseClick(bar.log_button, Qt.MouseButton.LeftButton)
    qtbot.keyClick(bar.log, Qt.Key.Key_Escape)  # Escape
    assert not bar.log.isVisible() and bar.log_button.text() == "Messages ▾"


def test_a_message_too_long_for_the_area_is_cut_with_the_whole_on_hover(window: MainWindow) -> None:
    text = "The plan cannot start: " + "the area needs a response first, " * 60 + "end."
    window.notify(text, "error")
    assert window.message.text().endswith("…") and "end." in window.message.toolTip()
    assert window.message_bar.full_text().endswith("end.")


def test_every_identifier_has_a_display_name() -> None:
    assert set(LESION_NAMES) == set(LESION_TYPES)
    assert {v for k, v in vars(InterlockCause).items() if k.isupper()} == set(INTERLOCK_NAMES)
    assert all("_" not in name for name in (*LESION_NAMES.values(), *FIELD_NAMES.values()))


def test_texts_from_elsewhere_are_scrubbed() -> None:
    raw = ("pen disconnected (device reports readiness to read but returned no data (device disconnected or "
           "multiple access on port?)) on /dev/pts/7")
    text = scrub(raw)
    assert "/dev/pts" not in text and "readiness" not in text and "its port" in text
    assert scrub("INTERLOCK contact_lost on light: x") == "Skin contact interlock on the UV light: x"
    assert "_" not in scrub("target_dose_mj_cm2 changed on hypopigmented_atrophic_scar")
    assert scrub("No serial port light (/dev/ttyUSB0)") == "No serial port light (/dev/ttyUSB0)"  # typed by the user
    assert scrub("pen reconnected on /tmp/cicatrix-emu-5trg_f/tty-pen") == "pen reconnected on its port"
    assert quantity(float("nan"), "mJ/cm²") == "—" and quantity(250.0, "mJ/cm²") == "250 mJ/cm²"
    assert count(1, "pass") == "1 pass" and count(2, "pass") == "2 passes"
    assert field_change("size_cm2", 4.0, 5.0) == "size 4 cm² → 5 cm²"


def test_event_sentences_have_no_identifiers() -> None:
    for il in INTERLOCK_NAMES:
        ev = Event(now_s(), "interlock", "high", "safety", f"INTERLOCK {il} on pen: x", {"interlock": il,
                                                                                       "device": "pen"})
        assert "_" not in event_sentence(ev) and "needling pen" in event_sentence(ev)
    fault = Event(now_s(), "fault", "high", "pen", "pen fault: MOTOR_JAM: x", {"faults": ["MOTOR_JAM"]})
    assert event_sentence(fault) == "The needling pen reports motor jammed."
    gone = Event(now_s(), "connection", "high", "pen", "pen disconnected (device reports readiness to read but "
                 "returned no data) /dev/pts/3", {"link": LinkEvent.DISCONNECTED, "disconnect": DisconnectReason.READ_FAILED})
    assert event_sentence(gone) == "The needling pen is disconnected: check its cable."
    # worded from the code, not the message's words
    silent = Event(now_s(), "connection", "high", "pen", "pen disconnected?", {"link": LinkEvent.TELEMETRY_LOST})
    assert event_sentence(silent) == "No data from the needling pen for a quarter of a second."
    back = Event(now_s(), "connection", "medium", "light", "light: the link", {"link": LinkEvent.RECONNECTED})
    assert event_sentence(back) == "The UV light is connected again; it was made safe."


def test_ports_the_user_typed_are_shown_as_typed_and_drivers_in_words() -> None:
    """Findings v10 #4: a typed /dev/pts port became "its port"; a driver's identifier reached the screen."""
    from drivers.types import DriverInfo, Identity
    from workstation.ui.wording import keep_ports

    keep_ports(["/dev/pts/41"])
    text = scrub("The port /dev/pts/41 given for the light answered as a microneedling pen; /dev/pts/42 too")
    assert "/dev/pts/41 given" in text and "/dev/pts/42" not in text and "its port too" in text
    info = DriverInfo(name="light-uvb308", kind="light", version="1", description="", nominal_rate_hz=1.0,
                      channels=(), bounds=(), protocol_versions=(2,))
    problem = info.identity_problem(Identity("UVB-308", "S1", "f", 1, {"kind": "needling"}))
    assert "a microneedling pen, not a UV light" in problem and "'" not in problem


def test_a_refusal_on_the_worker_is_not_logged_as_a_failure(qtbot, caplog) -> None:
    import logging

    from workstation.errors import UserError
    from workstation.ui.bus_bridge import Tasks

    tasks = Tasks()
    got = []

    def refuse():
        raise UserError("The light waits for a radiometer check.")

    with caplog.at_level(logging.INFO):
        tasks.run(refuse, got.append, got.append)
        qtbot.waitUntil(lambda: bool(got), timeout=5000)
    assert isinstance(got[0], UserError)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
