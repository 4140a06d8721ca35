"""Simulation only: the trainer injects faults into the emulated devices during a session, and the window keeps a log
of how the trainee responded: the time from each alarm's appearance to STOP and to its acknowledgement."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workstation.bus import Event, now_s
from workstation.errors import UserError
from workstation.session.scenario import TimedEvent
from workstation.ui.alarms import Alarm
from workstation.ui.wording import device_name, event_sentence, scrub
from workstation.words import counted

FAULTS = {
    "light": ("contact_lost", "contact_restored", "over_temperature", "lamp_failure", "sensor_low", "sensor_glitch",
              "unplug", "replug", "stall", "unstall", "corrupt", "clear_faults_cause"),  # clear: lamp cooled, replaced
    "pen": ("contact_lost", "contact_restored", "motor_jam", "unplug", "replug", "stall", "unstall", "corrupt",
            "clear_faults_cause"),  # clear_faults_cause: jam freed
}
STOP_ANSWERS_WITHIN_S = 60.0  # team default: a STOP later than this after an alarm is not counted as its answer
FAULT_WORDS = {  # what the trainer reads in the list (the emulator's action name is the item's data)
    "contact_lost": "Skin contact lost", "contact_restored": "Skin contact back", "over_temperature": "Lamp too hot",
    "lamp_failure": "Lamp fails", "sensor_low": "Sensor reads low", "sensor_glitch": "Sensor glitch",
    "unplug": "Unplug the cable", "replug": "Plug the cable back", "stall": "Data stops (stall)",
    "unstall": "Data resumes", "corrupt": "Corrupted frames", "motor_jam": "Motor jams",
    "clear_faults_cause": "Remove the fault's cause (lamp cooled or replaced, jam freed)",
}


@dataclass
class Response:
    """The trainee's response to one alarm (seconds after it appeared; None while not done)."""

    message: str
    severity: str
    shown_at_s: float
    stop_after_s: float | None = None
    ack_after_s: float | None = None


class TrainerPanel(QWidget):
    def __init__(self, inject: Callable[[str, str, float], None], notify: Callable[[str, str], None],
                 session_action: Callable[[str], None] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._inject, self._notify, self._session_action = inject, notify, session_action
        self.scenario_events: tuple[TimedEvent, ...] = ()  # the scenario's TimedEvents, played from the first step's start
        self._scheduled = False
        self.responses: list[Response] = []
        self._by_alarm: dict[int, Response] = {}
        self.t0_s = now_s()
        self.device = QComboBox()
        for dev in FAULTS:
            self.device.addItem(device_name(dev), dev)
        self.device.setObjectName("fault_device")
        self.action = QComboBox()
        self.action.setObjectName("fault_action")
        self.device.currentIndexChanged.connect(lambda _i: self._device_changed(self.device.currentData()))
        self._device_changed(self.device.currentData())
        self.inject_button = QPushButton("Inject fault")
        self.inject_button.setObjectName("inject_button")
        self.inject_button.clicked.connect(self.inject_selected)
        self.play_scenario = QCheckBox("Play the scenario's timed faults from the first step")
        self.play_scenario.setObjectName("play_scenario")
        self.play_scenario.setChecked(True)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setObjectName("trainer_log")
        self.log.setMaximumBlockCount(2000)
        row = QHBoxLayout()
        row.addWidget(self.device)
        row.addWidget(self.action, 1)
        row.addWidget(self.inject_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("<b>Trainer</b>: inject a fault into the emulated devices"))
        layout.addLayout(row)
        layout.addWidget(self.play_scenario)
        layout.addWidget(QLabel("Trainee's responses (time since session start, s)"))
        layout.addWidget(self.log, 1)

    def _device_changed(self, device: str) -> None:
        self.action.clear()
        for action in FAULTS.get(device, ()):
            self.action.addItem(FAULT_WORDS.get(action, action), action)

    def _write(self, text: str) -> None:
        self.log.appendPlainText(f"{now_s() - self.t0_s:7.2f} s  {text}")

    def inject_selected(self) -> None:
        self.inject(self.device.currentData(), self.action.currentData())

    def choose(self, device: str, action: str) -> None:
        """Select a fault by the device's and the emulator action's names (the lists show them in words)."""
        self.device.setCurrentIndex(self.device.findData(device))
        self.action.setCurrentIndex(self.action.findData(action))

    def inject(self, device: str, action: str, value: float = 0.0) -> None:
        try:
            self._inject(device, action, value)
        except UserError as exc:
            self._notify(str(exc), "error")
            return
        self._write(f"injected into the {device_name(device)}: {FAULT_WORDS.get(action, action).lower()}")

    # --- the scenario's own timed events -----------------------------------------------------------------------
    def set_scenario_events(self, events: tuple[TimedEvent, ...]) -> None:
        self.scenario_events, self._scheduled = tuple(events), False
        self.play_scenario.setEnabled(bool(events))
        self.play_scenario.setText(f"Play the scenario's {counted(len(events), 'timed event')} from the first step"
                                   if events else "This scenario has no timed events")

    def on_event(self, event: Event) -> None:
        """Start the scenario's clock at the first step, as the headless runner does."""
        if (self._scheduled or not self.scenario_events or not self.play_scenario.isChecked()
                or event.kind != "protocol" or event.details.get("event") != "step_started"):
            return
        self._scheduled = True
        for ev in self.scenario_events:
            timer = QTimer(self)  # owned by the panel: gone with it, never fires into a closed window
            timer.setSingleShot(True)
            timer.timeout.connect(lambda ev=ev: self._play(ev))
            timer.start(int(ev.at_s * 1000))
        self._write(f"scenario clock started: {counted(len(self.scenario_events), 'timed event')}")

    def _play(self, ev: TimedEvent) -> None:
        if ev.device:
            self.inject(ev.device, ev.action, ev.value)
        elif self._session_action is not None:
            self._session_action(ev.action)
            self._write(f"scenario: {ev.action.replace('_', ' ')}")

    # --- the trainee's side ---------------------------------------------------------------------------------------
    def on_alarm(self, alarm: Alarm) -> None:
        r = Response(alarm.event.message, alarm.severity, alarm.shown_at_s)
        self.responses.append(r)
        self._by_alarm[id(alarm)] = r
        self._write(f"{alarm.severity} alarm: {event_sentence(alarm.event)}")

    def on_stop(self, t_s: float | None = None) -> None:
        """A STOP answers one alarm only: the latest high-priority alarm not yet acknowledged and not yet answered,
        raised at most STOP_ANSWERS_WITHIN_S before it. Earlier or unrelated alarms get no STOP time (docs/user-guide:
        "Trainee's responses")."""
        t = now_s() if t_s is None else t_s
        open_high = [r for r in self.responses if r.severity == "high" and r.stop_after_s is None
                     and r.ack_after_s is None and 0 <= t - r.shown_at_s <= STOP_ANSWERS_WITHIN_S]
        if open_high:
            answered = max(open_high, key=lambda r: r.shown_at_s)
            answered.stop_after_s = round(t - answered.shown_at_s, 3)
            self._write(f"STOP pressed, {answered.stop_after_s:.2f} s after the alarm: {scrub(answered.message)}")
        else:
            self._write("STOP pressed (no high-priority alarm open)")

    def on_ack(self, alarm: Alarm) -> None:
        r = self._by_alarm.get(id(alarm))
        if r is None or alarm.acknowledged_at_s is None:
            return
        r.ack_after_s = round(alarm.acknowledged_at_s - alarm.shown_at_s, 3)
        self._write(f"acknowledged after {r.ack_after_s:.2f} s: {event_sentence(alarm.event)}")

    def report_lines(self) -> list[str]:
        def fmt(x: float | None) -> str:
            return "—" if x is None else f"{x:.2f} s"

        return [f"{r.severity}: {scrub(r.message)} — STOP after {fmt(r.stop_after_s)}, acknowledged after "
                f"{fmt(r.ack_after_s)}" for r in self.responses] or ["No alarm during the session."]
