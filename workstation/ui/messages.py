"""How errors become sentences, and the window's message area: one fixed line, newest first, never a dialog.

The area is one line high whatever it says, so nothing on the page moves when a message comes or goes: a long
message is elided, and the whole of it with the earlier ones is on hover (the tooltip) or in the message log, a
popup that floats over the page. A new message replaces the one shown, so a success replaces the error it answers.
Every text passes through `wording.scrub`: no identifier, device path or library message reaches the screen.
"""

from __future__ import annotations

import logging
import time

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from workstation.errors import UserError
from workstation.session import SessionError
from workstation.ui.wording import scrub

log = logging.getLogger(__name__)

MESSAGE_COLORS = {"error": "#ffcdd2", "warning": "#fff59d", "info": "#e3f2fd"}
LEVEL_LABELS = {"error": "Error", "warning": "Warning", "info": "Info"}
HISTORY = 200  # messages kept in the log popup


def user_text(exc: Exception) -> str:
    """A user's error as its own sentence; anything else as a short line pointing to the log (the trace goes there)."""
    if isinstance(exc, UserError | SessionError):
        text = scrub(str(exc))
        return text[:1].upper() + text[1:]
    log.error("unexpected error", exc_info=exc)
    return ("Something went wrong that the program did not expect. Check the devices and the interlock lights; "
            "the details are in the log.")


class MessageBar(QWidget):
    """One line, fixed height: the newest message with its level in words, and a button for the earlier ones."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.messages: list[tuple[str, str, str]] = []  # (level, text, hh:mm:ss), oldest first
        self.label = QLabel()
        self.label.setObjectName("message")
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(False)
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # text never sizes the window
        self.log_button = QPushButton("Messages ▾")
        self.log_button.setObjectName("message_log_button")
        self.log_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.log_button.clicked.connect(self.show_log)
        self.log = QListWidget()
        self.log.setObjectName("message_log")
        self.log.setWindowFlags(Qt.WindowType.Popup)
        self.log.setWordWrap(True)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label, 1)
        row.addWidget(self.log_button)
        height = self.fontMetrics().height() + 14
        self.label.setFixedHeight(height)
        self.setFixedHeight(height)
        self.clear()

    def show_message(self, text: str, level: str = "info") -> None:
        text = " ".join(scrub(text).split())
        self.messages.append((level, text, time.strftime("%H:%M:%S")))
        del self.messages[:-HISTORY]
        self.label.setStyleSheet(f"background:{MESSAGE_COLORS.get(level, '#eeeeee')};padding:2px 6px;"
                                 "border-radius:4px")
        self._elide()
        self.label.setToolTip("\n".join(f"{t}  {LEVEL_LABELS.get(lv, lv)}: {m}"
                                        for lv, m, t in reversed(self.messages[-10:])))

    def current(self) -> tuple[str, str]:
        """(level, text) of the message shown, ("", "") when none."""
        return self.messages[-1][:2] if self.messages and self.label.text() else ("", "")

    def clear(self) -> None:
        self.label.setText("")
        self.label.setStyleSheet("background:transparent;padding:2px 6px")

    def show_log(self) -> None:
        self.log.clear()
        for level, text, t in reversed(self.messages):
            item = QListWidgetItem(f"{t}  {LEVEL_LABELS.get(level, level)}: {text}")
            item.setBackground(self.palette().base() if level == "info" else
                               _brush(MESSAGE_COLORS.get(level, "#eeeeee")))
            self.log.addItem(item)
        top_left = self.mapToGlobal(self.rect().bottomLeft())
        self.log.setGeometry(top_left.x(), top_left.y(), self.width(), 300)
        self.log.show()

    def resizeEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)  # type: ignore[arg-type]
        self._elide()

    def _elide(self) -> None:
        if not self.messages:
            return
        level, text, _t = self.messages[-1]
        full = f"{LEVEL_LABELS.get(level, level)}: {text}"
        width = max(50, self.label.width() - 14)
        self.label.setText(self.label.fontMetrics().elidedText(full, Qt.TextElideMode.ElideRight, width))


def _brush(color: str) -> object:
    from PyQt6.QtGui import QBrush, QColor

    return QBrush(QColor(color))
