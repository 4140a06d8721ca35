"""The first window (walking skeleton): both devices' live plots and a status line per device."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from PyQt6.QtCore import QEvent, QObject, Qt, QTimer
from PyQt6.QtGui import QCloseEvent, QGuiApplication
from PyQt6.QtWidgets import QLabel, QMainWindow, QWidget

from workstation.plotbuffer import PlotBuffers
from workstation.synthetic_source import DataSource, DeviceLink, RateMeter
from workstation.ui.geometry import fit_to_screen
from workstation.ui.plots import LivePlots
from workstation.words import counted

STATUS_REFRESH_MS = 500
TITLES = {"light": "Light (UVB handpiece)", "pen": "Pen (microneedling)"}


def seconds_since_process_start() -> float:
    """Seconds since the kernel started this process (Linux; 10 ms resolution), or nan elsewhere."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return float("nan")


class DeviceStatus(QLabel):
    """One line per device: connected or not, frames/s, bad frames, sequence gaps, and any connection error."""

    def __init__(self, device: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.device = device
        self.frames_per_s = 0.0
        self._meter = RateMeter()
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.update_from(None, None)

    def update_from(self, link: DeviceLink | None, error: str | None) -> None:
        title = TITLES.get(self.device, self.device)
        if link is None or (not link.connected and error is None):
            state, color, detail = "connecting…" if link is None else "not connected", "#b08000", ""
            self.frames_per_s = 0.0
        else:
            c = link.counters
            self.frames_per_s = self._meter.update(int(c.frames))
            state, color = ("connected", "#2e7d32") if link.connected else ("not connected", "#c62828")
            detail = (
                f" · {self.frames_per_s:.0f} frames/s · {counted(int(c.frames), 'frame')} · {c.bad_frames} bad"
                f" · {counted(int(c.seq_gaps), 'sequence gap')}"
            )
        if error:
            detail += f" · {error}"
        self.setText(f"<b>{title}</b>: <span style='color:{color}'>● {state}</span>{detail}")


class LiveWindow(QMainWindow):
    """Live plots of both devices over the buffers a data source feeds; shows at once, whatever the devices are doing."""

    def __init__(self, buffers: PlotBuffers, source: DataSource, *, title: str = "Cicatrix — live") -> None:
        super().__init__()
        self.setWindowTitle(title)
        self.buffers = buffers
        self.source = source
        self.plots = LivePlots(buffers)
        self.status_lines: dict[str, DeviceStatus] = {}
        for dev, box in self.plots.device_boxes.items():
            line = DeviceStatus(dev)
            box.insertWidget(0, line)
            self.status_lines[dev] = line
        self.setCentralWidget(self.plots)
        fit_to_screen(self, 1400, 860)
        self.status_timer = QTimer(self)
        self.status_timer.setInterval(STATUS_REFRESH_MS)
        self.status_timer.timeout.connect(self.refresh_status)
        self._on_first_paint: list[Callable[[], None]] = []
        self.installEventFilter(self)

    def start(self) -> None:
        self.plots.start()
        self.status_timer.start()
        self.refresh_status()

    def refresh_status(self) -> None:
        for dev, line in self.status_lines.items():
            line.update_from(self.source.links.get(dev), self.source.errors.get(dev))

    def call_on_first_paint(self, callback: Callable[[], None]) -> None:
        self._on_first_paint.append(callback)

    def eventFilter(self, watched: QObject | None, event: QEvent | None) -> bool:  # noqa: N802 - Qt's name
        if watched is self and event is not None and event.type() == QEvent.Type.Paint and self._on_first_paint:
            callbacks, self._on_first_paint = self._on_first_paint, []
            for callback in callbacks:
                QTimer.singleShot(0, callback)  # after this paint completes
        return super().eventFilter(watched, event)

    def screenshot_when_ready(self, path: Path, data_s: float = 3.0, timeout_s: float = 20.0) -> None:
        """Save a PNG of the window once every device has `data_s` seconds of data (or at `timeout_s`), then close.

        Under X (Xvfb or a desktop) the picture is read back from the screen, as a person would see it.
        """
        deadline_s = time.monotonic() + timeout_s
        poll = QTimer(self)

        def check() -> None:
            spans = [self.buffers.stats(dev) for dev in self.buffers.devices]
            ready = all(s.samples_total and s.t_last_s - s.t_first_s >= data_s for s in spans)
            if not ready and time.monotonic() < deadline_s:
                return
            poll.stop()
            self.plots.refresh()
            self.refresh_status()
            QTimer.singleShot(100, save)  # let the refreshed plots paint

        def save() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            screen = self.screen()
            use_screen = QGuiApplication.platformName() == "xcb" and screen is not None
            picture = screen.grabWindow(int(self.winId())) if use_screen else self.grab()
            if not picture.save(str(path), "PNG"):
                raise OSError(f"could not write the screenshot {path}")
            print(f"screenshot saved to {path}", flush=True)
            self.close()

        poll.timeout.connect(check)
        poll.start(100)

    def closeEvent(self, event: QCloseEvent | None) -> None:  # noqa: N802 - Qt's name
        self.plots.stop()
        self.status_timer.stop()
        super().closeEvent(event)


def first_show_report() -> str:
    """The line `run --exit-after-first-show` prints: JSON with the monotonic time and the time since start."""
    return json.dumps(
        {"first_show_monotonic_s": time.monotonic(), "since_process_start_s": seconds_since_process_start()}
    )
