"""A trip after the workstation itself was held up past the wall limit (1 s) names the workstation, not the device.

Fresh tester of issue 12: held up over 1 s, the devices were stopped (right) but every sentence said the device's
telemetry was lost. The words of a lost silence are made in one place (`drivers.silence.lost_words`): silence seen
while looking is the device's; lost on the wall-clock bound alone it is a stall of the workstation, with
`details[STALL_DETAIL]`, and the window words it from that detail (`workstation.ui.wording.event_sentence`).
"""

from __future__ import annotations

import re
import threading

import pytest
from conftest import wait_for
from test_held_up import SCENARIO, _monitor, hold_the_process

from drivers.codes import InterlockCause, LinkEvent
from drivers.silence import STALL_DETAIL, SilenceWatch, lost_words
from workstation.bus import Event
from workstation.recording.reader import Recording
from workstation.session.scenario import load_scenario
from workstation.session.visit import Visit
from workstation.ui.wording import event_sentence

# A device blamed for over a second of silence (the old words after a long hold-up).
DEVICE_BLAMED = re.compile(r"no telemetry (from \w+ )?for \d{4,} ms")


def test_the_words_of_a_silence_seen_and_of_a_stall():
    w = SilenceWatch(0.0)
    for k in range(1, 31):
        w.looked(0.01 * k)
    words, details = lost_words("light", w, 0.3, 0.25)
    assert words == "no telemetry from light for 300 ms" and STALL_DETAIL not in details
    held = SilenceWatch(0.0)
    held.looked(0.02)
    held.looked(1.32)  # held up 1.3 s
    assert held.lost(1.32, 0.25)
    words, details = lost_words("light", held, 1.32, 0.25)
    assert "the workstation could not look for 1.3 s (a stall of 1.3 s, over the 1 s limit)" in words
    assert "no telemetry" not in words and details[STALL_DETAIL] == pytest.approx(1.3)


def test_the_monitor_held_up_past_the_wall_limit_trips_in_words_that_name_the_workstation():
    t0 = 100.0
    mon, col, light = _monitor(t0)
    mon.watch(t0 + 0.01)
    mon.watch(t0 + 1.31)  # held up 1.3 s: lost on the wall clock, nothing seen
    [trip] = mon.trips
    assert trip.interlock == InterlockCause.TELEMETRY_LOST and light.stops
    assert "could not look for 1.3 s" in trip.message and not DEVICE_BLAMED.search(trip.message)
    [event] = [e for e in col.events if e.kind == "interlock"]
    assert event.details[STALL_DETAIL] == pytest.approx(1.3)
    sentence = event_sentence(event)
    assert "held up and could not watch the UV light for 1.3 s" in sentence and "stopped" in sentence
    assert "quarter of a second" not in sentence


def test_a_silence_seen_is_still_the_devices_in_every_word():
    t0 = 100.0
    mon, col, light = _monitor(t0)
    t = t0
    while not mon.trips:
        t += 0.01
        mon.watch(t)
    [event] = [e for e in col.events if e.kind == "interlock"]
    assert "no telemetry from light for" in event.message and STALL_DETAIL not in event.details
    assert "no data came from the device for a quarter of a second" in event_sentence(event)


def test_a_drivers_stall_event_is_worded_as_a_stall_and_its_trip_keeps_the_detail():
    t0 = 100.0
    mon, col, light = _monitor(t0)
    held = SilenceWatch(t0)
    held.looked(t0 + 1.2)
    words, details = lost_words("light", held, t0 + 1.2, 0.25)
    event = Event(t0 + 1.2, "connection", "high", "light", words, {"link": LinkEvent.TELEMETRY_LOST, **details})
    assert event_sentence(event).startswith("The workstation was held up and could not watch the UV light for 1.2 s")
    mon.on_event(event)
    [trip] = mon.trips
    assert trip.details[STALL_DETAIL] == pytest.approx(1.2) and "could not look for 1.2 s" in trip.message


def test_held_up_1_3_s_mid_exposure_the_devices_stop_and_no_sentence_blames_them(tmp_path):
    """The rig held 1.3 s mid-exposure: the light stops, the trips and the session's summary name the stall."""
    from workstation.session.runner import _print_summary

    v = Visit.training(load_scenario(SCENARIO), tmp_path / "rec", store_path=tmp_path / "t.sqlite3")
    v.begin()
    try:
        emu = v.rig.emulators["light"]

        def hold() -> None:
            wait_for(lambda: emu.state().active, 10, "the exposure")
            hold_the_process(1.3)

        th = threading.Thread(target=hold, daemon=True)
        th.start()
        result = v.run_step()
        th.join(10)
        wait_for(lambda: v.rig.monitor.trips, 5, "a trip")
        assert result.outcome == "interrupted" and not emu.state().active
        messages = [t.message for t in v.rig.monitor.trips]
        assert any("could not look for 1." in m for m in messages), messages
        assert not [m for m in messages if DEVICE_BLAMED.search(m)], messages
        saved = v.end()
        lines: list[str] = []
        _print_summary(lines.append, load_scenario(SCENARIO), saved.summary, None, None, 0)
        text = "\n".join(lines)
        assert "could not look for 1." in text and not DEVICE_BLAMED.search(text), text
        events = [e.message for e in Recording.open(saved.recording).events]  # every recorded word, not only trips
        assert not [m for m in events if DEVICE_BLAMED.search(m)], events
    finally:
        v.close()


def test_through_the_window_a_stall_past_the_wall_limit_is_said_as_the_workstations(qtbot, window):
    from PyQt6.QtCore import Qt
    from test_ui_session import TIMEOUT_MS, arm, start_training

    win = window
    start_training(qtbot, win, "combined-uneventful.toml")
    arm(qtbot, win)
    emu = win.controller.rig.emulators["light"]

    def hold() -> None:
        wait_for(lambda: emu.state().active, 10, "the exposure")
        hold_the_process(1.3)

    th = threading.Thread(target=hold, daemon=True)
    th.start()
    qtbot.mouseClick(win.treatment.start_step_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(win.controller.rig.monitor.trips), timeout=TIMEOUT_MS)
    th.join(10)
    qtbot.waitUntil(lambda: any("could not watch" in a.text() for a in win.treatment.alarms.alarms),
                    timeout=TIMEOUT_MS)
    texts = "\n".join(a.text() for a in win.treatment.alarms.alarms)
    assert "held up and could not watch the" in texts and not DEVICE_BLAMED.search(texts), texts


def test_samples_missing_after_a_stall_are_said_as_the_workstations_and_otherwise_as_the_devices():
    """Frames lost while the workstation could not read the line (a stall its reader's watch saw) are not the
    device's silence: the device-time gap's sentence names the stall and carries its detail."""
    from drivers.frames import _gap_words

    watch = SilenceWatch(0.0)
    watch.looked(0.05)
    words, details = _gap_words("light", 0.3, watch)  # looked on time: the device's frames are missing
    assert words == "light: no telemetry for 300 ms of device time (samples missing between frames)"
    assert STALL_DETAIL not in details and details["device_gap_s"] == 0.3
    watch.looked(1.35)  # then 1.3 s the reader's watch could not look
    words, details = _gap_words("light", 1.3, watch)
    assert "could not read the line for 1.3 s (a stall)" in words and "no telemetry" not in words
    assert details[STALL_DETAIL] == pytest.approx(1.3)
