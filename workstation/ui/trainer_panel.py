"""Simulation only: the trainer injects faults into the emulated devices during a session, and the window keeps a log
of how the trainee responded: the time from each alarm's appearance to STOP and to its acknowledgement."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PyQt6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workstation.bus import now_s
from workstation.errors import UserError
from workstation.ui.alarms import Alarm

FAULTS = {
    "light": ("contact_lost", "contact_restored", "over_temperature", "lamp_failure", "unplug", "replug", "stall",
              "unstall", "corrupt"),
    "pen": ("contact_lost", "contact_restored", "motor_jam", "unplug", "replug", "stall", "unstall", "corrupt"),
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
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._inject, self._notify = inject, notify
        self.responses: list[Response] = []
        self._by_alarm: dict[int, Response] = {}
        self.t0_s = now_s()
        self.device = QComboBox()
        self.device.addItems(list(FAULTS))
        self.device.setObjectName("fault_device")
        self.action = QComboBox()
        self.action.setObjectName("fault_action")
        self.device.currentTextChanged.connect(self._device_changed)
        self._device_changed(self.device.currentText())
        self.inject_button = QPushButton("Inject fault")
        self.inject_button.setObjectName("inject_button")
        self.inject_button.clicked.connect(self.inject_selected)
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
        layout.addWidget(QLabel("Trainee's responses"))
        layout.addWidget(self.log, 1)

    def _device_changed(self, device: str) -> None:
        self.action.clear()
        self.action.addItems(list(FAULTS.get(device, ())))

    def _write(self, text: str) -> None:
        self.log.appendPlainText(f"{now_s() - self.t0_s:7.2f} s  {text}")

    def inject_selected(self) -> None:
        self.inject(self.device.currentText(), self.action.currentText())

    def inject(self, device: str, action: str, value: float = 0.0) -> None:
        try:
            self._inject(device, action, value)
        except UserError as exc:
            self._notify(str(exc), "error")
            return
        self._write(f"injected {action.replace('_', ' ')} into the {device}")

    # --- the trainee's side ---------------------------------------------------------------------------------------
    def on_alarm(self, alarm: Alarm) -> None:
        r = Response(alarm.event.message, alarm.severity, alarm.shown_at_s)
        self.responses.append(r)
        self._by_alarm[id(alarm)] = r
        self._write(f"{alarm.severity} alarm: {alarm.event.message}")

    def on_stop(self, t_s: float | None = None) -> None:
        t = now_s() if t_s is None else t_s
        waiting = [r for r in self.responses if r.stop_after_s is None]
        for r in waiting:
            r.stop_after_s = round(t - r.shown_at_s, 3)
        if waiting:
            latest = max(waiting, key=lambda r: r.shown_at_s)
            self._write(f"STOP pressed, {latest.stop_after_s:.2f} s after the last alarm")
        else:
            self._write("STOP pressed (no alarm open)")

    def on_ack(self, alarm: Alarm) -> None:
        r = self._by_alarm.get(id(alarm))
        if r is None or alarm.acknowledged_at_s is None:
            return
        r.ack_after_s = round(alarm.acknowledged_at_s - alarm.shown_at_s, 3)
        self._write(f"acknowledged after {r.ack_after_s:.2f} s: {alarm.event.message}")

    def report_lines(self) -> list[str]:
        def fmt(x: float | None) -> str:
            return "—" if x is None else f"{x:.2f} s"

        return [f"{r.severity}: {r.message} — STOP after {fmt(r.stop_after_s)}, acknowledged after "
                f"{fmt(r.ack_after_s)}" for r in self.responses]
