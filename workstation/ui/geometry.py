"""Window geometry: every top-level window fits the screen it opens on."""

from __future__ import annotations

from PyQt6.QtCore import QEvent, QObject, QTimer
from PyQt6.QtGui import QGuiApplication
from PyQt6.QtWidgets import QStyle, QWidget


def fit_to_screen(window: QWidget, width: int, height: int) -> None:
    """Size `window` to width × height px, at most the available geometry of its screen (the screen less panels
    and docks), and place it inside that geometry, so no edge (nor a button at it) is off-screen on a small one.
    Before the window is shown its frame is unknown: room is kept for a title bar, and once shown it is fitted
    again with the frame the window system gave it."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    if screen is None:
        window.resize(width, height)
        return
    avail = screen.availableGeometry()
    frame = window.frameGeometry().size() - window.geometry().size()  # the title bar and borders, once shown
    frame_w, frame_h = frame.width(), frame.height()
    if not window.isVisible() and frame_h == 0:  # not framed yet: keep room for the window manager's title bar
        style = window.style()
        frame_h = style.pixelMetric(QStyle.PixelMetric.PM_TitleBarHeight) if style is not None else 0
        _RefitOnShow(window)
    window.resize(min(width, avail.width() - frame_w), min(height, avail.height() - frame_h))
    window.move(avail.topLeft())


class _RefitOnShow(QObject):
    """Fits the window once more just after it is first shown (its frame is known then), then goes away."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self._window = window
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject | None, event: QEvent | None) -> bool:  # noqa: N802 - Qt's name
        if watched is self._window and event is not None and event.type() == QEvent.Type.Show:
            self._window.removeEventFilter(self)
            QTimer.singleShot(0, self._refit)
        return False

    def _refit(self) -> None:
        size = self._window.size()
        fit_to_screen(self._window, size.width(), size.height())
        self.deleteLater()
