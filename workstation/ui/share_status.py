"""The window's line about the clinic's recordings share: how many recordings wait to be copied there and why
("3 recordings waiting to copy to /mnt/clinic/recordings: the share … is not reachable; retrying every 60 s").
Non-modal, hidden while nothing waits. The copies run on the ShareCopier's own thread
(workstation/recording/share.py); its status reaches this label through a Qt signal, on the GUI thread."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QLabel, QWidget

from workstation.recording.share import ShareCopier, ShareStatus
from workstation.ui.wording import scrub

WAITING_STYLE = "QLabel#share_status { background: #fff59d; padding: 2px 6px; }"


class ShareStatusLine(QLabel):
    """One line under the message area; `start` runs the copier of the clinic store (once)."""

    status_changed = pyqtSignal(object)  # ShareStatus, emitted from the copier's thread

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("share_status")
        self.setStyleSheet(WAITING_STYLE)
        self.setWordWrap(True)
        self.hide()
        self.copier: ShareCopier | None = None
        self.status: ShareStatus | None = None
        self.status_changed.connect(self._show)

    def start(self, open_store: Callable[[], Any], share: Path, **copier_options: Any) -> None:
        """Start copying the store's recordings to `share` (nothing if already started)."""
        if self.copier is not None:
            return
        self.copier = ShareCopier(open_store, share, on_status=self.status_changed.emit, **copier_options).start()

    def _show(self, status: ShareStatus) -> None:
        self.status = status
        text = scrub(status.text())
        self.setText(text)
        self.setToolTip(text)
        self.setVisible(bool(text))

    def shutdown(self) -> None:
        """At window close: the copier stops after its current file (a hung share does not hold the window)."""
        if self.copier is not None:
            self.copier.stop(timeout_s=2.0)
