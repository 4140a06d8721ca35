"""Alarms by priority (IEC 60601-1-8: high red, medium yellow, low cyan, each colour with its text label) and the
interlock lights.

Every bus event with a severity above "info" is an alarm *signal*. Signals with one cause are one alarm *condition*
(IEC 60601-1-8 §6.1): a pen unplugged gives a disconnect, a telemetry loss and an interlock trip, and the window shows
one condition, headed by its most telling signal, with the others listed under it, acknowledged once. Signals join a
condition when they concern the same device and arrive within GROUP_WINDOW_S of its last signal; a later one is a new
condition (a new cause must sound, even while an old one waits for its acknowledgement).
The operator's own STOP is an operator action, not an alarm: it lights the E-stop interlock, is in the recording, and
is listed once per press, grey, under the alarms, with nothing to acknowledge.
Acknowledging publishes one `alarm_ack` event on the bus, so the recording keeps who acknowledged what and how long
after it appeared. The most urgent open condition also sounds, repeating until acknowledged (`alarm_sound.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QFont, QFontMetrics
from PyQt6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from drivers.codes import InterlockCause
from workstation.bus import Event, SessionBus, now_s
from workstation.ui.alarm_groups import (
    OPERATOR_PRESS_S,
    PRIORITY,
    Condition,
    is_alarm,
    operator_stop_line,
    role_label,
    same_cause,
)
from workstation.ui.alarm_sound import AlarmSound
from workstation.ui.wording import (
    SEVERITY_LABELS,
    device_name,
    event_sentence,
    interlock_name,
    is_operator_stop,
)

COLORS = {"high": ("#d32f2f", "#ffffff"), "medium": ("#fbc02d", "#000000"), "low": ("#00bcd4", "#000000")}
INTERLOCKS = [v for k, v in vars(InterlockCause).items() if k.isupper()]


@dataclass
class Alarm(Condition):
    """One alarm condition in the window: a Condition (alarm_groups: the one grouping) with when it was shown and
    acknowledged."""

    shown_at_s: float = 0.0  # host monotonic time it appeared in the window
    acknowledged_at_s: float | None = None

    @property
    def signals(self) -> list[Event]:
        return [self.event, *self.related]

    def takes(self, event: Event, t: float) -> bool:
        """Whether `event` (arriving at `t`) belongs to this condition's cause."""
        return same_cause(self.event, self.last_signal_s, event, t)

    def text(self) -> str:
        mark = "  (acknowledged)" if self.acknowledged_at_s is not None else ""
        lines = [f"{SEVERITY_LABELS[self.severity]:6}  {event_sentence(self.event)}{mark}"]
        lines += [f"  {role_label(e, 'related'):8}  {event_sentence(e)}" for e in self.related]
        return "\n".join(lines)


class AlarmList(QWidget):
    """The alarm conditions and their Acknowledge button. `acknowledged(alarm)` fires after the ack event is
    published; `raised(alarm)` when a new condition appears (a related signal joining one does not raise again)."""

    acknowledged = pyqtSignal(object)
    raised = pyqtSignal(object)

    def __init__(self, operator: str = "operator", parent: QWidget | None = None,
                 sound: AlarmSound | None = None) -> None:
        super().__init__(parent)
        self.sound = sound or AlarmSound(self)
        self.bus: SessionBus | None = None
        self.operator = operator
        self.alarms: list[Alarm] = []
        self.actions: list[Event] = []  # the operator's STOPs: actions to see, nothing to acknowledge
        self.seen: list[Event] = []  # every alarm signal and STOP taken, in order (the summary groups them alike)
        self._reset_s = -float("inf")  # when an interlock reset was last taken: no later signal joins an older alarm
        self.list = QListWidget()
        self.list.setObjectName("alarm_list")
        self.list.setWordWrap(True)
        self.ack_button = QPushButton("Acknowledge alarm")
        self.ack_button.setObjectName("ack_button")
        self.ack_button.clicked.connect(self.acknowledge_selected)
        self.summary = QLabel("No alarm to acknowledge")
        head = QHBoxLayout()
        head.addWidget(QLabel("<b>Alarms</b>"))
        head.addWidget(self.summary, 1)
        head.addWidget(self.ack_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(head)
        layout.addWidget(self.list)

    def add(self, event: Event) -> Alarm | None:
        """Take a bus event: a new condition (returned), a signal joining an open one (returned, not raised again),
        or None when it is not an alarm."""
        if is_operator_stop(event):
            self._operator_stop(event)
            return None
        if event.kind == "interlock_reset":  # a trip after it is a new condition, raised and said (fresh tester, 19th)
            self._reset_s = now_s()
        if not is_alarm(event):
            return None
        self.seen.append(event)
        t = now_s()
        joined = next((a for a in reversed(self.alarms) if a.shown_at_s > self._reset_s and a.takes(event, t)), None)
        if joined is not None:
            was_acknowledged = joined.acknowledged_at_s is not None
            worse = PRIORITY[event.severity] < PRIORITY[joined.severity]
            joined.join(event, t)
            if was_acknowledged and worse:  # a worse signal of an acknowledged condition needs a new look
                joined.acknowledged_at_s = None
            self._render()
            self.sound.update(self._open_priorities())
            return joined
        alarm = Alarm(event, last_signal_s=t, shown_at_s=t)
        self.alarms.append(alarm)
        self._render()
        self.sound.update(self._open_priorities(), raised=alarm.severity)
        self.raised.emit(alarm)
        return alarm

    def _operator_stop(self, event: Event) -> None:
        """The operator's STOP, listed (grey, below the alarms) as an action: one line per press, not per device."""
        self.seen.append(event)
        if self.actions and event.t_host_s - self.actions[-1].t_host_s < OPERATOR_PRESS_S:
            return
        self.actions.append(event)
        self._render()

    def _open_priorities(self) -> set[str]:
        return {a.severity for a in self.alarms if a.acknowledged_at_s is None}

    def unacknowledged(self) -> list[Alarm]:
        return [a for a in self._ordered() if a.acknowledged_at_s is None]

    def _ordered(self) -> list[Alarm]:
        return sorted(self.alarms, key=lambda a: (a.acknowledged_at_s is not None, PRIORITY[a.severity],
                                                   -a.shown_at_s))

    def _render(self) -> None:
        self.list.clear()
        for alarm in self._ordered():
            item = QListWidgetItem(alarm.text())
            item.setToolTip("\n".join(f"{e.source}: {event_sentence(e)}" for e in alarm.signals))
            bg, fg = COLORS[alarm.severity]
            if alarm.acknowledged_at_s is not None:
                bg, fg = "#eeeeee", "#444444"
            item.setBackground(QBrush(QColor(bg)))
            item.setForeground(QBrush(QColor(fg)))
            item.setData(Qt.ItemDataRole.UserRole, id(alarm))
            self.list.addItem(item)
        for action in reversed(self.actions):
            item = QListWidgetItem(f"ACTION  {operator_stop_line(action)}")
            item.setForeground(QBrush(QColor("#444444")))
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            self.list.addItem(item)
        open_ = self.unacknowledged()
        counts = {s: sum(a.severity == s for a in open_) for s in PRIORITY}
        self.summary.setText(", ".join(f"{n} {s}" for s, n in counts.items() if n) + " to acknowledge"
                             if open_ else "No alarm to acknowledge")

    def acknowledge_selected(self) -> Alarm | None:
        """Acknowledge the selected condition (all its signals at once), or the most urgent one if none is selected."""
        item = self.list.currentItem()
        alarm = None
        if item is not None:
            alarm = next((a for a in self.alarms if id(a) == item.data(Qt.ItemDataRole.UserRole)), None)
        if alarm is None or alarm.acknowledged_at_s is not None:
            open_ = self.unacknowledged()
            alarm = open_[0] if open_ else None
        if alarm is None:
            return None
        alarm.acknowledged_at_s = now_s()
        if self.bus is not None:
            ev = alarm.event
            self.bus.publish_event(Event(alarm.acknowledged_at_s, "alarm_ack", "info", "operator",
                                         f"{self.operator} acknowledged: {ev.message}",
                                         {"who": self.operator, "alarm_kind": ev.kind, "severity": alarm.severity,
                                          "alarm_message": ev.message, "alarm_t_host_s": ev.t_host_s,
                                          "related": [e.message for e in alarm.related],
                                          "after_s": round(alarm.acknowledged_at_s - alarm.shown_at_s, 3)}))
        self._render()
        self.sound.update(self._open_priorities())
        self.acknowledged.emit(alarm)
        return alarm

    def clear(self) -> None:
        self.alarms.clear()
        self.actions.clear()
        self.seen.clear()
        self._render()
        self.sound.silence()


class InterlockLights(QWidget):
    """One light per interlock: grey while clear, red while latched (until the operator resets the interlocks)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lights: dict[str, QLabel] = {}
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(3)
        for i, name in enumerate(INTERLOCKS):
            label = QLabel(interlock_name(name))
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            bold = QFont(label.font())
            bold.setBold(True)  # room for the tripped look ("name ✕", bold) from the start: nothing moves on a trip
            label.setMinimumWidth(QFontMetrics(bold).horizontalAdvance(f"{interlock_name(name)} ✕") + 10)
            label.setObjectName(f"interlock_{name}")
            self.lights[name] = label
            grid.addWidget(label, i // 4, i % 4)
        self.clear()

    def tripped(self) -> set[str]:
        return {n for n, lab in self.lights.items() if lab.property("tripped")}

    def set_tripped(self, name: str, device: str = "") -> None:
        label = self.lights.get(name)
        if label is None:
            return
        label.setProperty("tripped", True)
        label.setText(f"{interlock_name(name)} ✕")  # the mark says it too: colour is not the only signal
        label.setToolTip(f"tripped on the {device_name(device)}" if device else "tripped")
        label.setStyleSheet("background:#d32f2f;color:white;font-weight:bold;border-radius:4px;padding:3px")

    def clear(self) -> None:
        for name, label in self.lights.items():
            label.setText(interlock_name(name))
            label.setProperty("tripped", False)
            label.setToolTip("clear")
            label.setStyleSheet("background:#e0e0e0;color:#555;border-radius:4px;padding:3px")

    def on_event(self, event: Event) -> None:
        if event.kind == "interlock":
            self.set_tripped(str(event.details.get("interlock", "")), str(event.details.get("device", "")))
        elif event.kind == "interlock_reset":
            self.clear()
