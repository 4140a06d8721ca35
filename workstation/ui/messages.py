"""How errors become sentences, and the window's message area: newest first, never a dialog.

The area is one line high for a message that fits one line, so the page does not move for them. A longer message
(a refusal such as "P-0042 is being treated in room 2 by dr-a since 10:14; …") wraps, and the area grows to show
all of it, up to MAX_LINES lines, even at the window's minimum width; it is one line again with the next short
message. Only a message longer than MAX_LINES lines is cut, with "…". The message's text can be selected with the
mouse or keyboard and copied (Ctrl+C, or the right-click menu); the whole of it with the earlier ones is on hover (the
tooltip) and in the message log, a panel that floats over the page. A new message replaces the one shown, so a
success replaces the error it answers. Every text passes through `wording.scrub`: no identifier, device path or
library message reaches the screen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from PyQt6.QtCore import QRect, Qt
from PyQt6.QtGui import QKeyEvent
from PyQt6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from workstation.errors import UserError
from workstation.session.session import SessionError
from workstation.ui.wording import scrub

log = logging.getLogger(__name__)

MESSAGE_COLORS = {"error": "#ffcdd2", "warning": "#fff59d", "info": "#e3f2fd"}
LEVEL_LABELS = {"error": "Error", "warning": "Warning", "info": "Info"}
HISTORY = 200  # messages kept in the log popup
MAX_LINES = 6  # a message taller than this at the window's width is cut with "…" (the whole: tooltip, log)
PADDING_PX = 14  # the label's padding and border, top and bottom together


def user_text(exc: Exception) -> str:
    """A user's error as its own sentence; anything else as a short line pointing to the log (the trace goes there)."""
    if isinstance(exc, UserError | SessionError):
        text = scrub(str(exc))
        return text[:1].upper() + text[1:]
    log.error("unexpected error", exc_info=exc)
    return ("Something went wrong that the program did not expect; the details are in the log. During a session, "
            "check the devices and the interlock lights.")


class MessageBar(QWidget):
    """One line, fixed height: the newest message with its level in words, and a button for the earlier ones."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.messages: list[tuple[str, str, str]] = []  # (level, text, hh:mm:ss), oldest first
        self.label = QLabel()
        self.label.setObjectName("message")
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse |
                                           Qt.TextInteractionFlag.TextSelectableByKeyboard)  # selected, copied
        self.label.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # never takes the focus from STOP's keys by Tab
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # text never widens the window
        self.log_button = QPushButton("Messages ▾")
        self.log_button.setObjectName("message_log_button")
        self.log_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.log_button.clicked.connect(self.toggle_log)
        # The log is a panel inside the window, laid over the page (not a popup window: without a window manager a
        # popup may never close). Closed by the button again, its Close button, or Escape while it has the focus.
        self.log_panel = QFrame()
        self.log_panel.setObjectName("message_log_panel")
        self.log_panel.setFrameShape(QFrame.Shape.Box)
        self.log_panel.setStyleSheet("#message_log_panel{background:white;border:1px solid #606060}")
        self.log = _LogList(self.hide_log)
        self.log.setObjectName("message_log")
        self.log.setWordWrap(True)
        self.close_log_button = QPushButton("Close ✕")
        self.close_log_button.setObjectName("message_log_close")
        self.close_log_button.clicked.connect(self.hide_log)
        head = QHBoxLayout()
        head.addWidget(QLabel("<b>Messages</b>, newest first"), 1)
        head.addWidget(self.close_log_button)
        panel = QVBoxLayout(self.log_panel)
        panel.setContentsMargins(6, 6, 6, 6)
        panel.addLayout(head)
        panel.addWidget(self.log)
        self.log_panel.hide()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label, 1)
        row.addWidget(self.log_button)
        self.one_line_px = self.fontMetrics().height() + PADDING_PX
        self._set_height(self.one_line_px)
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
        self._set_height(self.one_line_px)

    def full_text(self) -> str:
        """The shown message as a whole, with its level in words ('' when none)."""
        if not self.messages or not self.label.text():
            return ""
        level, text, _t = self.messages[-1]
        return f"{LEVEL_LABELS.get(level, level)}: {text}"

    def show_log(self) -> None:
        self.log.clear()
        for level, text, t in reversed(self.messages):
            item = QListWidgetItem(f"{t}  {LEVEL_LABELS.get(level, level)}: {text}")
            item.setBackground(self.palette().base() if level == "info" else
                               _brush(MESSAGE_COLORS.get(level, "#eeeeee")))
            self.log.addItem(item)
        host = self.window()
        if self.log_panel.parentWidget() is not host:
            self.log_panel.setParent(host)
        top_left = self.mapTo(host, self.rect().bottomLeft())
        self.log_panel.setGeometry(top_left.x(), top_left.y(), self.width(), 320)
        self.log_panel.show()
        self.log_panel.raise_()
        self.log.setFocus()
        self.log_button.setText("Messages ▴")

    def hide_log(self) -> None:
        self.log_panel.hide()
        self.log_button.setText("Messages ▾")

    def toggle_log(self) -> None:
        if self.log_panel.isVisible():
            self.hide_log()
        else:
            self.show_log()

    def resizeEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)  # type: ignore[arg-type]
        self._elide()

    def _set_height(self, px: int) -> None:
        if self.label.height() != px or self.height() != px:
            self.label.setFixedHeight(px)
            self.setFixedHeight(px)

    def _needed_px(self, text: str) -> int:
        """The area's height for `text` wrapped at the label's width less its padding: one line's height plus a
        line's spacing for each further line."""
        width = max(50, self.label.width() - PADDING_PX - 2)
        fm = self.label.fontMetrics()
        text_px = fm.boundingRect(QRect(0, 0, width, 100_000), Qt.TextFlag.TextWordWrap, text).height()
        lines = max(1, round(text_px / fm.lineSpacing()))
        return self.one_line_px + (lines - 1) * fm.lineSpacing()

    def _elide(self) -> None:
        """Show the newest message whole, wrapped, the area as high as it needs (MAX_LINES at most)."""
        if not self.messages:
            return
        level, text, _t = self.messages[-1]
        full = f"{LEVEL_LABELS.get(level, level)}: {text}"
        limit = self.one_line_px + (MAX_LINES - 1) * self.fontMetrics().lineSpacing()
        shown = full
        if self._needed_px(full) > limit:  # cut at a word so that MAX_LINES hold it; the whole is on hover and in the log
            words = full.split(" ")
            lo, hi = 1, len(words)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self._needed_px(" ".join(words[:mid]) + " …") <= limit:
                    lo = mid
                else:
                    hi = mid - 1
            shown = " ".join(words[:lo]) + " …"
        self.label.setText(shown)
        self._set_height(min(limit, self._needed_px(shown)))


def _brush(color: str) -> object:
    from PyQt6.QtGui import QBrush, QColor

    return QBrush(QColor(color))


class _LogList(QListWidget):
    """The message log's list: Escape closes the panel."""

    def __init__(self, on_escape: Callable[[], None]) -> None:
        super().__init__()
        self._on_escape = on_escape

    def keyPressEvent(self, event: QKeyEvent | None) -> None:  # noqa: N802 - Qt's name
        if event is not None and event.key() == Qt.Key.Key_Escape:
            self._on_escape()
            event.accept()
            return
        super().keyPressEvent(event)
