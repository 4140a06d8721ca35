"""The replay's timeline: a slider over the whole recording with a tick per event, coloured by alarm priority."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PyQt6.QtWidgets import QSlider, QStyle, QWidget

from workstation.bus import Event
from workstation.ui.alarms import COLORS, PRIORITY

TICKS = 100_000  # slider steps over the whole recording (36 ms of an hour)


class Timeline(QSlider):
    """A horizontal slider over the recording with a tick per event (coloured by alarm priority)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setRange(0, TICKS)
        self.setMinimumHeight(34)
        self.markers: list[tuple[float, str]] = []  # (fraction 0..1, colour), painted in this order

    def set_events(self, events: list[Event], t0_s: float, duration_s: float) -> None:
        """One tick per event; info first and high last, so a higher priority is drawn above a lower one."""
        span, order = max(duration_s, 1e-9), sorted(events, key=lambda e: -PRIORITY.get(e.severity, 3))
        self.markers = [(min(1.0, max(0.0, (e.t_host_s - t0_s) / span)), COLORS.get(e.severity, ("#555555",))[0])
                        for e in order]
        self.update()

    def mousePressEvent(self, event: QMouseEvent | None) -> None:  # noqa: N802 - Qt's name
        """A click on the groove jumps exactly there (not a page step); a press on the handle drags as usual."""
        if event is not None and event.button() == Qt.MouseButton.LeftButton:
            value = QStyle.sliderValueFromPosition(self.minimum(), self.maximum(),
                                                   int(event.position().x()) - 6, max(1, self.width() - 12))
            handle = abs(value - self.value()) / max(1, self.maximum()) * self.width() < 8
            if not handle:
                self.setValue(value)
                event.accept()
                return
        super().mousePressEvent(event)

    def paintEvent(self, event: QPaintEvent | None) -> None:  # noqa: N802 - Qt's name
        super().paintEvent(event)
        painter = QPainter(self)
        w = self.width() - 12
        for frac, color in self.markers:
            high = color == COLORS["high"][0]
            painter.setPen(QPen(QColor(color), 3 if high else 2))
            x = 6 + int(frac * w)
            painter.drawLine(x, 0, x, 12 if high else 8)
        painter.end()
