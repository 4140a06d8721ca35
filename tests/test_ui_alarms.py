"""Every interlock shows its alarm: each trip event lights its interlock in red and lists a high alarm, in priority
order, acknowledged into the recording's bus; and faults the trainer injects during a step trip their interlock with
the device made safe (checked in the emulator's own state)."""

from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt

from workstation.bus import Event, SessionBus, now_s
from workstation.protocols.library import seeds_dir
from workstation.ui.alarms import COLORS, INTERLOCKS, AlarmList, InterlockLights
from workstation.ui.main_window import MainWindow
from workstation.ui.trainer_panel import FAULT_WORDS
from workstation.ui.wording import device_name, interlock_name

TIMEOUT_MS = 20_000


class Collect:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_block(self, device: str, block: object) -> None:
        return None

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def on_command(self, record: object) -> None:
        return None


def trip(interlock: str, device: str = "light") -> Event:
    return Event(now_s(), "interlock", "high", "safety", f"INTERLOCK {interlock} on {device}: test",
                 {"interlock": interlock, "device": device})


@pytest.mark.parametrize("interlock", INTERLOCKS)
def test_each_interlock_lights_and_raises_a_high_alarm(qtbot, interlock: str) -> None:
    lights, alarms = InterlockLights(), AlarmList("nurse-1")
    qtbot.addWidget(lights)
    qtbot.addWidget(alarms)
    ev = trip(interlock)
    lights.on_event(ev)
    alarm = alarms.add(ev)
    assert lights.tripped() == {interlock}
    assert alarm is not None and alarm.severity == "high"
    item = alarms.list.item(0)
    assert interlock_name(interlock) in item.text() and item.background().color().name() == COLORS["high"][0]
    assert "_" not in item.text() and item.text().startswith("HIGH")  # words, and the priority in text too
    lights.on_event(Event(now_s(), "interlock_reset", "info", "operator", "reset", {}))
    assert lights.tripped() == set()


def test_alarms_are_ordered_by_priority_and_acknowledgements_go_on_the_bus(qtbot) -> None:
    bus, seen = SessionBus(), Collect()
    bus.subscribe(seen)
    alarms = AlarmList("nurse-1")
    alarms.bus = bus
    qtbot.addWidget(alarms)
    for severity, source in (("low", "recorder"), ("medium", "pen"), ("high", "light")):
        alarms.add(Event(now_s(), "alarm", severity, source, f"{severity} thing", {}))
    assert alarms.add(Event(now_s(), "state", "info", "session", "not an alarm", {})) is None
    assert [alarms.list.item(i).text().split()[0] for i in range(3)] == ["HIGH", "MEDIUM", "LOW"]
    assert [alarms.list.item(i).background().color().name() for i in range(3)] == [
        COLORS["high"][0], COLORS["medium"][0], COLORS["low"][0]]
    assert alarms.summary.text() == "1 high, 1 medium, 1 low to acknowledge"
    qtbot.mouseClick(alarms.ack_button, Qt.MouseButton.LeftButton)
    acks = [e for e in seen.events if e.kind == "alarm_ack"]
    assert len(acks) == 1 and acks[0].details["severity"] == "high" and acks[0].details["who"] == "nurse-1"
    assert alarms.list.item(2).text().endswith("(acknowledged)")  # kept, greyed, after the open ones
    assert alarms.summary.text() == "1 medium, 1 low to acknowledge"


@pytest.mark.parametrize(("scenario", "device", "fault", "interlock"), [
    ("combined-uneventful.toml", "light", "over_temperature", "over_temperature"),
    ("combined-uneventful.toml", "light", "unplug", "disconnected"),
    ("pih-gentle-needling.toml", "pen", "contact_lost", "contact_lost"),
    ("pih-gentle-needling.toml", "pen", "motor_jam", "device_fault"),
])
def test_an_injected_fault_trips_its_interlock_and_the_device_is_safe(
        qtbot, window: MainWindow, scenario: str, device: str, fault: str, interlock: str) -> None:
    win = window
    page = win.start_page
    page.scenario.setCurrentIndex(page.scenario.findData(str(seeds_dir() / "scenarios" / scenario)))
    qtbot.mouseClick(page.simulation_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.plan_view, timeout=TIMEOUT_MS)
    qtbot.mouseClick(win.plan_view.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.treatment, timeout=TIMEOUT_MS)
    emulator = win.controller.rig.emulators[device]
    qtbot.mouseClick(win.treatment.start_step_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: emulator.state().active, timeout=TIMEOUT_MS)
    win.trainer.choose(device, fault)
    qtbot.mouseClick(win.trainer.inject_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: interlock in win.treatment.interlocks.tripped(), timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: not win.treatment.step_running, timeout=TIMEOUT_MS)
    # the light's shutter is closed at once; the pen's motor brakes for a moment (the session allows it 500 ms)
    qtbot.waitUntil(lambda: emulator.state().active is False, timeout=500)
    assert any(a.severity == "high" and interlock in a.event.message for a in win.treatment.alarms.alarms)
    assert f"injected into the {device_name(device)}: {FAULT_WORDS[fault].lower()}" in win.trainer.log.toPlainText()


def test_the_scenarios_own_timed_fault_plays_from_the_first_step(qtbot, window: MainWindow) -> None:
    """contact-lost-mid-exposure.toml: the handpiece leaves the skin 1 s into the exposure."""
    win = window
    page = win.start_page
    page.scenario.setCurrentIndex(page.scenario.findData(str(seeds_dir() / "scenarios" /
                                                             "contact-lost-mid-exposure.toml")))
    qtbot.mouseClick(page.simulation_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.plan_view, timeout=TIMEOUT_MS)
    assert win.trainer is not None and win.trainer.play_scenario.isChecked()
    qtbot.mouseClick(win.plan_view.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.treatment, timeout=TIMEOUT_MS)
    qtbot.mouseClick(win.treatment.start_step_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "contact_lost" in win.treatment.interlocks.tripped(), timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: not win.treatment.step_running, timeout=TIMEOUT_MS)
    assert win.controller.rig.emulators["light"].state().active is False
    log = win.trainer.log.toPlainText()
    assert "scenario clock started" in log and "injected into the UV light: skin contact lost" in log
