"""Replay: a recording played onto its own bus, feeding the same plots as a live session, with a timeline of event
markers, speed, seek and step-to-next-event.

Opening runs on a worker thread (it takes milliseconds, even for an hour of telemetry: the reader reads only the
index). Then the file is checked against the SHA-256 the recorder saved beside it at close, on a thread of its own,
behind a progress bar in percent (0.5 s per 600 MB, warm cache, on a 2-core machine); the engineer can replay
meanwhile, and a file that changed after it was closed is an alarm in the window."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PyQt6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workstation.bus import Event, SessionBus
from workstation.plotbuffer import PlotBuffers
from workstation.ui.alarms import COLORS
from workstation.ui.bus_bridge import BusBridge, Tasks
from workstation.ui.plots import LivePlots, plotted_channels

SPEEDS = ("0.1x", "0.5x", "1x", "2x", "5x", "10x", "100x")
TICKS = 1000  # slider steps over the whole recording


class Timeline(QSlider):
    """A horizontal slider over the recording with a tick per event (coloured by alarm priority)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setRange(0, TICKS)
        self.setMinimumHeight(34)
        self.markers: list[tuple[float, str]] = []  # (fraction 0..1, colour)

    def set_events(self, events: list[Event], t0_s: float, duration_s: float) -> None:
        span = max(duration_s, 1e-9)
        self.markers = [(min(1.0, max(0.0, (e.t_host_s - t0_s) / span)), COLORS.get(e.severity, ("#555555",))[0])
                        for e in events]
        self.update()

    def paintEvent(self, event: QPaintEvent | None) -> None:  # noqa: N802 - Qt's name
        super().paintEvent(event)
        painter = QPainter(self)
        w = self.width() - 12
        for frac, color in self.markers:
            painter.setPen(QPen(QColor(color), 2))
            x = 6 + int(frac * w)
            painter.drawLine(x, 0, x, 8)
        painter.end()


class _Cancelled(Exception):
    """The checksum was abandoned because its recording was closed."""


class ReplayView(QWidget):
    def __init__(self, notify: Callable[[str, str], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.notify = notify
        self.recording: Any = None
        self.source: Any = None
        self.bus = SessionBus()
        self.buffers = PlotBuffers(plotted_channels(), capacity_s=600, rate_hz=2000)
        self.bridge = BusBridge(self)
        self.bus.subscribe(self.buffers)
        self.bus.subscribe(self.bridge)
        self.bridge.received.connect(self._on_event)
        self.tasks = Tasks("replay-worker", self)

        self.title = QLabel("<h2>Replay</h2>")
        self.progress = QProgressBar()
        self.progress.setObjectName("replay_progress")
        self.progress.setRange(0, 0)  # busy while opening; then 0–100 % of the checksum
        self.progress.hide()
        self.integrity = QLabel("")
        self.integrity.setObjectName("replay_integrity")
        self.checksum: Any = None  # the ChecksumCheck once verified
        self.verifier = Tasks("replay-verify", self)
        self._verify_fraction = 0.0  # written by the verifier thread, read by the progress timer
        self._verify_cancel: threading.Event | None = None
        self._progress_timer = QTimer(self)
        self._progress_timer.setInterval(100)
        self._progress_timer.timeout.connect(self._show_verify_progress)
        self.play_button = QPushButton("Play")
        self.play_button.setObjectName("replay_play")
        self.play_button.clicked.connect(self.toggle_play)
        self.speed = QComboBox()
        self.speed.setObjectName("replay_speed")
        self.speed.addItems(list(SPEEDS))
        self.speed.setCurrentText("1x")
        self.speed.currentTextChanged.connect(self._speed_changed)
        self.next_button = QPushButton("Next event ▶|")
        self.next_button.setObjectName("replay_next_event")
        self.next_button.clicked.connect(self.next_event)
        self.position = QLabel("0.0 s")
        self.timeline = Timeline()
        self.timeline.setObjectName("replay_timeline")
        self.timeline.sliderReleased.connect(self._slider_released)
        self.timeline.valueChanged.connect(self._timeline_moved)  # a click on the groove, the keyboard
        self.events = QListWidget()
        self.events.setObjectName("replay_events")
        self.events.setMinimumWidth(380)
        self.events.setWordWrap(True)
        self.plots = LivePlots(self.buffers)
        self.plots.set_window("10 s")

        controls = QHBoxLayout()
        for w in (self.play_button, QLabel("speed"), self.speed, self.next_button, self.position):
            controls.addWidget(w)
        controls.addWidget(self.timeline, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.plots)
        split.addWidget(self.events)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.integrity)
        layout.addWidget(self.progress)
        layout.addLayout(controls)
        layout.addWidget(split, 1)
        self.clock = QTimer(self)
        self.clock.setInterval(100)
        self.clock.timeout.connect(self._tick)
        self._set_enabled(False)

    def _set_enabled(self, on: bool) -> None:
        for w in (self.play_button, self.speed, self.next_button, self.timeline):
            w.setEnabled(on)

    # --- opening ------------------------------------------------------------------------------------------------
    def open(self, path: Path, on_opened: Callable[[], None] | None = None) -> None:
        from workstation.recording import Recording

        self.close_recording()
        self.progress.setRange(0, 0)
        self.progress.setFormat("Opening…")
        self.progress.show()
        self.notify(f"Opening {path}…", "info")

        def done(recording: Any) -> None:
            self.progress.hide()
            self._opened(recording)
            self.verify_checksum(recording.path)
            if on_opened is not None:
                on_opened()

        def failed(exc: Exception) -> None:
            self.progress.hide()
            self.notify(f"{exc} Choose a recording made by Cicatrix (a .h5 file in recordings/).", "error")

        self.tasks.run(lambda: Recording.open(path), done, failed)

    def _opened(self, recording: Any) -> None:
        from workstation.recording import ReplaySource

        self.recording = recording
        meta = recording.meta
        t0 = meta.t0_host_s
        self.buffers.clear(t0)
        self.events.clear()
        self.timeline.set_events(list(recording.events), t0, recording.duration_s)
        self.source = ReplaySource(recording, self.bus, on_seek=lambda _t: self.buffers.clear(t0))
        partial = f" — partial: {recording.partial_reason}" if recording.partial else ""
        self.title.setText(f"<h2>Replay: {recording.path.name}</h2>{meta.mode} session of {meta.patient_pseudonym}, "
                           f"operator {meta.operator_id}, protocol {meta.protocol_id}, "
                           f"{recording.duration_s:.1f} s, {len(recording.events)} events{partial}")
        self._set_enabled(True)
        self.plots.start()
        self.clock.start()
        self.notify(f"Opened {recording.path.name}: press Play, drag the timeline, or step to the next event.",
                    "info")

    # --- integrity ------------------------------------------------------------------------------------------------
    def verify_checksum(self, path: Path) -> None:
        """Hash the file on the verifier thread, showing the percentage done; the result goes in `integrity`."""
        from workstation.recording.summary import check_checksum

        cancel = threading.Event()
        self._verify_cancel, self._verify_fraction, self.checksum = cancel, 0.0, None
        self.integrity.setText("Checking the file against its SHA-256…")
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.setFormat("Checking the SHA-256: %p %")
        self.progress.show()
        self._progress_timer.start()

        def progress(done: int, total: int) -> None:
            if cancel.is_set():
                raise _Cancelled
            self._verify_fraction = done / total if total else 1.0

        def finished(result: Any) -> None:
            if cancel.is_set():
                return  # the recording was closed meanwhile: this result is not for the one on screen
            self._end_verify()
            self.checksum = result
            if result.intact is False:
                self.integrity.setText(f"<b style='color:{COLORS['high'][0]}'>{result.text}</b>: what you replay may "
                                       "not be what was recorded.")
                self.notify(f"{path.name}: {result.text}. What you replay may not be what was recorded; keep the "
                            "file aside and report it.", "error")
            else:
                self.integrity.setText(f"Integrity: {result.text}.")

        def failed(exc: Exception) -> None:
            if isinstance(exc, _Cancelled) or cancel.is_set():
                return
            self._end_verify()
            self.integrity.setText(f"Integrity not checked: {exc}")

        self.verifier.run(lambda: check_checksum(path, progress), finished, failed)

    def _show_verify_progress(self) -> None:
        self.progress.setValue(int(100 * self._verify_fraction))

    def _end_verify(self) -> None:
        self._progress_timer.stop()
        self.progress.hide()
        self._verify_cancel = None

    def close_recording(self) -> None:
        if self._verify_cancel is not None:
            self._verify_cancel.set()
            self._end_verify()
        self.integrity.setText("")
        self.checksum = None
        self.clock.stop()
        self.plots.stop()
        if self.source is not None:
            self.source.close()
            self.source = None
        if self.recording is not None:
            self.recording.close()
            self.recording = None
        self._set_enabled(False)

    # --- controls -----------------------------------------------------------------------------------------------
    def toggle_play(self) -> None:
        if self.source is None:
            return
        if self.source.playing:
            self.source.pause()
        else:
            self.source.play()
        self._tick()

    def _speed_changed(self, text: str) -> None:
        if self.source is not None:
            self.source.set_speed(float(text.rstrip("x")))

    def seek(self, t_s: float) -> None:
        if self.source is not None:
            self.source.seek(t_s)
            self._tick()

    def _timeline_moved(self, _value: int) -> None:
        if not self.timeline.isSliderDown():  # while dragging, seek once on release
            self._slider_released()

    def _slider_released(self) -> None:
        if self.source is not None:
            self.seek(self.timeline.value() / TICKS * self.source.duration_s)

    def next_event(self) -> None:
        source = self.source
        if source is None:
            return
        self.next_button.setEnabled(False)

        def done(event: Event | None) -> None:
            self.next_button.setEnabled(True)
            if event is None:
                self.notify("There is no later event in this recording.", "info")
            self._tick()

        def failed(exc: Exception) -> None:
            self.next_button.setEnabled(True)
            self.notify(f"Could not step to the next event: {exc}", "error")

        self.tasks.run(lambda: source.step_event(+1), done, failed)

    def _tick(self) -> None:
        s = self.source
        if s is None:
            return
        self.play_button.setText("Pause" if s.playing else "Play")
        self.position.setText(f"{s.position_s:6.1f} / {s.duration_s:.1f} s")
        if not self.timeline.isSliderDown():
            self.timeline.blockSignals(True)
            self.timeline.setValue(round(s.position_s / max(s.duration_s, 1e-9) * TICKS))
            self.timeline.blockSignals(False)

    def _on_event(self, event: Event) -> None:
        t = event.t_host_s - self.recording.meta.t0_host_s if self.recording is not None else 0.0
        self.events.addItem(f"{t:7.2f} s  {event.severity:6} {event.message}")
        self.events.scrollToBottom()
