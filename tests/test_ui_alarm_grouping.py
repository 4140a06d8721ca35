"""IEC 60601-1-8 alarm conditions: the signals of one cause are one condition, headed by its most telling signal,
listed under it and acknowledged once; another device's alarm is its own condition; the operator's own STOP is an
action, not an alarm; a real fault through the window gives one condition to acknowledge."""

from __future__ import annotations

from PyQt6.QtCore import Qt

from tests.test_ui_alarms import Collect
from workstation.bus import Event, SessionBus, now_s
from workstation.protocols.library import seeds_dir
from workstation.ui.alarm_groups import GROUP_WINDOW_S
from workstation.ui.alarms import AlarmList
from workstation.ui.main_window import MainWindow

TIMEOUT_MS = 20_000


def _unplug_signals(device: str) -> list[Event]:
    return [
        Event(now_s(), "connection", "high", device, f"{device} disconnected (device reports readiness to read but "
              "returned no data) /dev/pts/4", {"reason": "x"}),
        Event(now_s(), "interlock", "high", "safety", f"INTERLOCK disconnected on {device}: gone",
              {"interlock": "disconnected", "device": device}),
        Event(now_s(), "connection", "high", device, f"{device}: no telemetry for 250 ms", {}),
        Event(now_s(), "interlock", "high", "safety", f"INTERLOCK telemetry_lost on {device}: none",
              {"interlock": "telemetry_lost", "device": device}),
    ]


def test_one_cause_is_one_condition_acknowledged_once(qtbot) -> None:
    bus, seen = SessionBus(), Collect()
    bus.subscribe(seen)
    alarms = AlarmList("nurse-1")
    alarms.bus = bus
    qtbot.addWidget(alarms)
    raised = []
    alarms.raised.connect(raised.append)
    for ev in _unplug_signals("pen"):
        alarms.add(ev)
    assert len(alarms.alarms) == 1 and len(raised) == 1 and alarms.list.count() == 1
    cond = alarms.alarms[0]
    assert cond.event.kind == "interlock" and len(cond.related) == 3  # headed by the interlock, the rest under it
    text = alarms.list.item(0).text()
    assert text.startswith("HIGH") and "Connection" in text and "needling pen" in text
    assert "/dev/pts" not in text and "readiness" not in text and "_" not in text
    alarms.add(Event(now_s(), "alarm", "medium", "light", "light lamp ageing", {}))
    assert len(alarms.alarms) == 2  # another device, another cause
    cond.last_signal_s -= GROUP_WINDOW_S + 0.1  # the pen's signals are older than the window now
    later = alarms.add(Event(now_s(), "alarm", "low", "pen", "pen cartridge nearly worn", {}))
    assert later is not cond and len(alarms.alarms) == 3 and len(raised) == 3  # a new cause raises again
    qtbot.mouseClick(alarms.ack_button, Qt.MouseButton.LeftButton)
    acks = [e for e in seen.events if e.kind == "alarm_ack"]
    assert len(acks) == 1 and len(acks[0].details["related"]) == 3
    assert alarms.summary.text() == "1 medium, 1 low to acknowledge"


def test_the_operators_stop_is_not_an_alarm(qtbot) -> None:
    alarms = AlarmList()
    qtbot.addWidget(alarms)
    for device in ("light", "pen"):
        ev = Event(now_s(), "interlock", "high", "safety", f"INTERLOCK estop on {device}: E-stop pressed",
                   {"interlock": "estop", "device": device, "source": "STOP button"})
        assert alarms.add(ev) is None
    assert alarms.alarms == [] and alarms.summary.text() == "No alarm to acknowledge"
    assert alarms.list.count() == 1 and alarms.list.item(0).text().startswith("ACTION  Operator STOP")  # one press
    assert alarms.acknowledge_selected() is None  # nothing to acknowledge
    failed = Event(now_s(), "interlock", "high", "safety", "INTERLOCK estop on light: E-stop pressed",
                   {"interlock": "estop", "device": "light", "source": "recording failed"})
    assert alarms.add(failed) is not None  # a stop the program made is an alarm


def test_stop_in_the_window_raises_no_alarm_and_a_fault_one_condition(qtbot, window: MainWindow) -> None:
    win = window
    page = win.start_page
    page.scenario.setCurrentIndex(page.scenario.findData(str(seeds_dir() / "scenarios" / "pih-gentle-needling.toml")))
    qtbot.mouseClick(page.simulation_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.plan_view, timeout=TIMEOUT_MS)
    qtbot.mouseClick(win.plan_view.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.treatment, timeout=TIMEOUT_MS)
    t = win.treatment
    qtbot.mouseClick(t.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "estop" in t.interlocks.tripped(), timeout=TIMEOUT_MS)
    qtbot.wait(200)
    assert t.alarms.alarms == [] and len(t.alarms.actions) == 1
    assert "_" not in win.message.text() and "INTERLOCK" not in win.message.text()
    t.reset_interlocks()  # on the worker: Start next step is enabled once the reset has cleared every latch
    qtbot.waitUntil(lambda: not t.interlocks.tripped() and t.start_step_button.isEnabled(), timeout=TIMEOUT_MS)
    emulator = win.controller.rig.emulators["pen"]
    qtbot.mouseClick(t.start_step_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: emulator.state().active, timeout=TIMEOUT_MS)
    win.trainer.choose("pen", "unplug")
    qtbot.mouseClick(win.trainer.inject_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "disconnected" in t.interlocks.tripped(), timeout=TIMEOUT_MS)
    qtbot.wait(600)  # the telemetry-lost signals follow
    pen_conditions = [a for a in t.alarms.alarms if "pen" in (a.event.details.get("device"), a.event.source)]
    assert len(pen_conditions) == 1 and pen_conditions[0].related
    assert all("/dev/pts" not in t.alarms.list.item(i).text() for i in range(t.alarms.list.count()))


def test_a_trip_does_not_move_the_interlock_lights(qtbot) -> None:
    from workstation.ui.alarms import InterlockLights

    lights = InterlockLights()
    qtbot.addWidget(lights)
    lights.show()
    qtbot.waitExposed(lights)
    before = {n: lab.geometry() for n, lab in lights.lights.items()}
    lights.set_tripped("contact_lost", "pen")
    qtbot.wait(20)
    assert lights.lights["contact_lost"].text().endswith("✕")  # tripped says so in text, not only in red
    assert {n: lab.geometry() for n, lab in lights.lights.items()} == before
