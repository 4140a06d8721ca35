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
    # Which watchdog speaks first after the hold-up is the scheduler's choice: the workstation's own (its wall-clock
    # bound, or the device-clock gap the stall left) or the emulated device's heartbeat watchdog, which resumes in the
    # same process and heard nothing from the workstation for 1.3 s. Every one of them names the workstation.
    names_the_workstation = ("held up and could not watch the", "could not read the line for 1.",
                             "it heard nothing from the workstation")
    qtbot.waitUntil(lambda: any(w in a.text() for a in win.treatment.alarms.alarms for w in names_the_workstation),
                    timeout=TIMEOUT_MS)
    qtbot.wait(300)  # the trips that follow the first one
    texts = "\n".join(a.text() for a in win.treatment.alarms.alarms)
    assert not DEVICE_BLAMED.search(texts) and "quarter of a second" not in texts, texts
    assert "samples missing between frames" not in texts, texts  # a gap the stall left is the stall's


def test_samples_missing_after_a_stall_are_said_as_the_workstations_and_otherwise_as_the_devices():
    """Frames lost while the workstation could not read the line (a stall its reader's watch saw) are not the
    device's silence: the device-time gap's sentence names the stall and carries its detail."""
    from drivers.frames import _gap_words

    words, details = _gap_words("light", 0.3, 0.0)  # looked on time: the device's frames are missing
    assert words == "light: no telemetry for 300 ms of device time (samples missing between frames)"
    assert STALL_DETAIL not in details and details["device_gap_s"] == 0.3
    words, details = _gap_words("light", 1.3, 1.3)  # a stall of 1.3 s behind them
    assert "could not read the line for 1.3 s (a stall)" in words and "no telemetry" not in words
    assert details[STALL_DETAIL] == pytest.approx(1.3)


def test_a_stall_stays_behind_the_gap_it_caused_after_a_sign_of_life():
    """Loaded CI (the window test above): after a 1.3 s hold-up the reader handled one frame on time (a sign of life,
    which ends the watchdog's blind time) and then the frame after the missing samples: the stall that covered them
    is still what the gap's sentence names, not the device."""
    watch = SilenceWatch(0.0)
    watch.looked(0.02)
    watch.heard(0.02)
    watch.looked(1.35)  # held up 1.33 s
    watch.heard(1.35)  # a frame from before the gap: the silence watchdog starts again from here
    assert watch.blind_s == 0.0 and watch.seen_s(1.35) == 0.0
    gap_s, t_arrival = 0.37, 1.40  # the next frame: 370 ms of device time missing, most of it inside the stall
    assert watch.stall_within(t_arrival - gap_s - 0.1, t_arrival) == pytest.approx(1.33)
    assert watch.stall_within(1.36, 1.40) == 0.0  # a gap wholly after the stall is the device's
    for k in range(1, 12):  # only the last few stretches are kept: an old stall is forgotten
        watch.looked(1.35 + 0.2 * k)
    assert watch.stall_within(0.0, 1.40) == 0.0
