"""Replay: a recording played onto its own bus, feeding the same plots as a live session, with a timeline of event
markers, speed, seek and step-to-next-event.

Opening runs on a worker thread (it takes milliseconds, even for an hour of telemetry: the reader reads only the
index). Then the file is checked against the SHA-256 the recorder saved beside it at close, on a thread of its own,
behind a progress bar in percent (0.5 s per 600 MB, warm cache, on a 2-core machine); the engineer can replay
meanwhile, and a file that changed after it was closed is an alarm in the window.

A data browser as much as a player: a click on the timeline seeks exactly there; every seek (a click, a drag, the
event and alarm buttons, paused or playing) fills the plots from the file for the whole window up to the new position,
so what led there is visible; the event and alarm buttons stop a little after the event (EVENT_AFTER_S) so its lead-up
fills the window. The event list shows the recording's events up to the position, rebuilt on every seek."""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workstation.bus import Event, SessionBus
from workstation.errors import UserError
from workstation.plotbuffer import PlotBuffers
from workstation.session.roles import used_by_steps
from workstation.ui.alarm_groups import group_events, operator_stop_line, role_label
from workstation.ui.alarms import COLORS
from workstation.ui.bus_bridge import BusBridge, Tasks
from workstation.ui.plots import LivePlots, plotted_channels
from workstation.ui.replay_timeline import TICKS, Timeline
from workstation.ui.wording import breakable, event_sentence, protocol_title
from workstation.words import counted, seconds

SPEEDS = ("0.1x", "0.5x", "1x", "2x", "5x", "10x", "100x")
EVENT_AFTER_S = 2.0  # an event jumped to is shown this far before the window's end (at most a quarter of it)
FILL_ROWS = 100_000  # rows per block when the plots are filled from the file after a seek


class _Cancelled(Exception):
    """The checksum was abandoned because its recording was closed."""


class ReplayView(QWidget):
    read_failed = pyqtSignal(str)  # the words for a window the replay thread could not read (a damaged file)

    def __init__(self, notify: Callable[[str, str], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.notify = notify
        self.read_failed.connect(self._read_failed)  # queued from the replay thread to this (the GUI) thread
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
        self.title.setWordWrap(True)  # a long partial reason wraps: it widened the window past the screen
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
        self.prev_button = QPushButton("|◀ Event")
        self.prev_button.setObjectName("replay_prev_event")
        self.prev_button.clicked.connect(lambda: self.step(-1))
        self.next_button = QPushButton("Event ▶|")
        self.next_button.setObjectName("replay_next_event")
        self.next_button.clicked.connect(self.next_event)
        self.prev_alarm_button = QPushButton("|◀ Alarm")
        self.prev_alarm_button.setObjectName("replay_prev_alarm")
        self.prev_alarm_button.clicked.connect(lambda: self.step(-1, alarms_only=True))
        self.next_alarm_button = QPushButton("Alarm ▶|")
        self.next_alarm_button.setObjectName("replay_next_alarm")
        self.next_alarm_button.clicked.connect(lambda: self.step(+1, alarms_only=True))
        self.report_button = QPushButton("Write PDF report")
        self.report_button.setObjectName("replay_report")
        self.report_button.setToolTip("The session's report drawn from this recording (the same report as the `report` command)")
        self.report_button.clicked.connect(self.write_report)
        self.report_path: Path | None = None
        self.position = QLabel("0.0 s")
        self.position.setObjectName("replay_position")
        self.position.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.position.setFixedWidth(self.position.fontMetrics().horizontalAdvance("00000.0 / 00000.0 s") + 8)
        self._event_t = np.empty(0)
        self._timed = 0  # how many events have a time (they come first)
        self._events: list[Event] = []
        self._roles: list[str] = []  # per event: alarm_groups.group_events roles
        self._event_cursor = -1  # index of the event last jumped to (or the last one before the position)
        self._jump_pos: float | None = None  # the position the last event jump left
        self.fills = 0  # times the plots were filled from the file (a seek)
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
        self.plots.window_choice.currentTextChanged.connect(lambda _t: self._refill())
        for w in (self.progress, self.integrity):  # they come and go without moving the controls
            policy = w.sizePolicy()
            policy.setRetainSizeWhenHidden(True)
            w.setSizePolicy(policy)
        # The integrity line wraps at the window's edge; the whole text is selectable and in the tooltip.
        self.integrity.setWordWrap(True)
        self.integrity.setTextFormat(Qt.TextFormat.RichText)
        self.integrity.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        policy = QSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        policy.setHeightForWidth(True)
        policy.setRetainSizeWhenHidden(True)
        self.integrity.setSizePolicy(policy)

        controls = QHBoxLayout()
        for w in (self.play_button, QLabel("speed"), self.speed, self.prev_button, self.next_button,
                  self.prev_alarm_button, self.next_alarm_button, self.report_button, self.position):
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
        for w in (self.play_button, self.speed, self.next_button, self.prev_button, self.next_alarm_button,
                  self.prev_alarm_button, self.report_button, self.timeline):
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
            self.notify(opening_words(path, exc), "error")

        self.tasks.run(lambda: Recording.open(path), done, failed)

    def _opened(self, recording: Any) -> None:
        from workstation.recording import ReplaySource

        self.recording = recording
        meta = recording.meta
        t0 = meta.t0_host_s
        self.buffers.clear(t0)
        self.events.clear()
        self._events = list(recording.events)  # in time order (Recording's contract): list, ticks and jumps
        # events at no time (a host time not finite) come last (Recording's order): NaN here, so the times stay
        # sorted for the bisections; they are listed at the end of the recording, never ticked or jumped to
        self._event_t = np.array([e.t_host_s - t0 for e in self._events], dtype=float)
        self._event_t[~np.isfinite(self._event_t)] = np.nan
        self._timed = int(np.isfinite(self._event_t).sum())
        self._event_cursor = -1
        self._roles = group_events(list(self._events)).roles  # grouped as the alarm panel groups them
        self.timeline.set_events([e for e, r, t in zip(self._events, self._roles, self._event_t, strict=True)
                                  if r not in ("related", "action-related") and np.isfinite(t)], t0,
                                 recording.duration_s)
        self.source = ReplaySource(recording, self.bus, on_seek=self._fill,
                                   on_error=lambda exc: self.read_failed.emit(str(exc)))  # paused there, in words
        partial = f" — partial: {recording.partial_reason}" if recording.partial else ""
        self.title.setText(f"<h2>Replay: {html.escape(recording.path.name)}</h2>" + html.escape(  # text, not markup
            f"{meta.mode} session of {meta.patient_pseudonym}, operator {meta.operator_id}, protocol "
            f"{protocol_title(meta.protocol_id, meta.protocol_version)}, duration {seconds(recording.known_duration_s, 1)}, "
            f"{counted(len(recording.events), 'event')}{partial}"))
        self._set_enabled(True)
        steps = (recording.plan or {}).get("steps") or []
        self.plots.show_devices(used_by_steps({n: d.driver_kind for n, d in recording.devices.items()},
                                              [st.get("modality") for st in steps if isinstance(st, dict)]))
        self.plots.start()
        self.clock.start()
        self.notify(f"Opened {recording.path.name}: press Play, drag the timeline, or step to the next event.",
                    "info")
        if recording.undecodable_rows:
            from workstation.recording.rows import undecodable_words

            self.notify(f"{recording.path.name}: {undecodable_words(recording.undecodable_rows)}.", "warning")

    # --- integrity ------------------------------------------------------------------------------------------------
    def verify_checksum(self, path: Path) -> None:
        """Hash the file on the verifier thread, showing the percentage done; the result goes in `integrity`."""
        from workstation.recording.summary import check_checksum

        cancel = threading.Event()
        self._verify_cancel, self._verify_fraction, self.checksum = cancel, 0.0, None
        self._show_integrity("Checking the file against its SHA-256…")
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
                self._show_integrity(result.text, warning="what you replay may not be what was recorded.")
                self.notify(f"{path.name}: {result.text}. What you replay may not be what was recorded; keep the "
                            "file aside and report it.", "error")
            else:
                self._show_integrity(f"Integrity: {result.text}.")

        def failed(exc: Exception) -> None:
            if isinstance(exc, _Cancelled) or cancel.is_set():
                return
            self._end_verify()
            self._show_integrity(f"Integrity not checked: {exc}")

        self.verifier.run(lambda: check_checksum(path, progress), finished, failed)

    def _show_integrity(self, text: str, *, warning: str = "") -> None:
        """The integrity line: `text` (plain words; red bold before a `warning`), wrapped, long runs breakable
        (`breakable`); the tooltip is the whole text exactly."""
        shown = html.escape(breakable(text))
        if warning:
            shown = f"<b style='color:{COLORS['high'][0]}'>{shown}</b>: {html.escape(warning)}"
        self.integrity.setText(shown)
        self.integrity.setToolTip(f"{text}: {warning}" if warning else text)

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
        self._show_integrity("")
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

    def seek(self, t_s: float, event_cursor: int | None = None) -> None:
        """Go to session time `t_s`: the plots are filled from the file up to it and the event list rebuilt."""
        if self.source is not None:
            self.source.seek(t_s)
            t = self.source.position_s
            self._event_cursor = (int(np.searchsorted(self._event_t, t, "right")) - 1 if event_cursor is None
                                  else event_cursor)
            self._jump_pos = None
            self._tick()

    def _refill(self) -> None:
        """The window length changed: fill it again from the file around the position (paused or not)."""
        if self.source is not None:
            self.seek(self.source.position_s, self._event_cursor)

    def _fill(self, t_s: float) -> None:
        """On the replay thread, at every seek: the plots get the window's data up to `t_s` from the file at once,
        instead of refilling at replay speed. Measured on a 15-min file of both devices at 2 kHz: ≈ 0.1 s for a 10-s
        window (mostly the reader's fixed cost of finding the rows, ≈ 50 ms a device), ≈ 0.5 s for 10 minutes."""
        rec = self.recording
        if rec is None:
            return
        self.buffers.clear(rec.meta.t0_host_s)
        lo = max(0.0, t_s - self.plots.window_s)
        for device in rec.devices:
            if device not in self.buffers.devices:
                continue
            try:
                rows = rec.telemetry(device, lo, t_s)
            except UserError as exc:  # a damaged part (RecordingError): words in the window, the thread lives on
                self.read_failed.emit(str(exc))
                return
            for i in range(0, len(rows), FILL_ROWS):
                self.buffers.on_block(device, rows[i:i + FILL_ROWS])
        self.fills += 1

    def step(self, direction: int, *, alarms_only: bool = False) -> Event | None:
        """To the next (+1) or previous (-1) event, or alarm (low, medium or high), shown with its lead-up."""
        if self.source is None or self.recording is None:
            return None
        events = self._events
        pos = self.source.position_s
        if self._jump_pos is not None and abs(pos - self._jump_pos) < 1e-6:  # still where the last jump left it
            base, back = self._event_cursor, self._event_cursor - 1
        else:  # played or moved since: from the position (an event just passed counts as the previous one)
            base = int(np.searchsorted(self._event_t, pos + 1e-9, "right")) - 1
            back = base
        indices = range(base + 1, self._timed) if direction > 0 else range(min(back, self._timed - 1), -1, -1)
        target = next((i for i in indices if not alarms_only or self._roles[i] == "alarm"), None)
        if target is None:
            what = "alarm" if alarms_only else "event"
            self.notify(f"There is no {'later' if direction > 0 else 'earlier'} {what} in this recording.", "info")
            return None
        after = min(EVENT_AFTER_S, 0.25 * self.plots.window_s)
        self.seek(min(float(self._event_t[target]) + after, self.source.duration_s), event_cursor=target)
        self._jump_pos = self.source.position_s
        return events[target]

    def _timeline_moved(self, _value: int) -> None:
        if not self.timeline.isSliderDown():  # while dragging, seek once on release
            self._slider_released()

    def _slider_released(self) -> None:
        if self.source is not None:
            self.seek(self.timeline.value() / TICKS * self.source.duration_s)

    def next_event(self) -> None:
        self.step(+1)

    def write_report(self) -> None:
        """The session's PDF report from this recording, beside it (without the store: no response in it)."""
        if self.recording is None:
            return
        from workstation.ui.report import report_failure_words, write_session_report
        from workstation.ui.report_data import read_report

        path = self.recording.path
        out = path.with_name(path.stem + "-report.pdf")
        self.report_button.setEnabled(False)

        def work() -> Path:
            data = read_report(path)
            data.check_integrity()  # a recording not proven intact says so in its report
            write_session_report(data, out)
            return out

        def done(p: Path) -> None:
            self.report_button.setEnabled(True)
            self.report_path = p
            self.notify(f"Report written: {p.name}, beside the recording.", "info")

        def failed(exc: Exception) -> None:
            self.report_button.setEnabled(True)
            self.notify(report_failure_words(exc), "error")

        self.tasks.run(work, done, failed)

    def _tick(self) -> None:
        s = self.source
        if s is None:
            return
        self.play_button.setText("Pause" if s.playing else "Play")
        self.position.setText(f"{s.position_s:.1f} / {s.duration_s:.1f} s")
        if not self.timeline.isSliderDown():
            self.timeline.blockSignals(True)
            self.timeline.setValue(round(s.position_s / max(s.duration_s, 1e-9) * TICKS))
            self.timeline.blockSignals(False)
        self._sync_events(s.position_s)

    def _sync_events(self, position_s: float) -> None:
        """The event list holds the recording's events up to the position: appended while playing, rebuilt after a
        seek back (never duplicated, always in time order)."""
        if self.recording is None:
            return
        k = int(np.searchsorted(self._event_t, position_s + 1e-9, "right"))
        if self.source is not None and position_s >= self.source.duration_s:
            k = len(self._events)  # at the end: the events at no time too
        if k < self.events.count():
            self.events.clear()
        events = self._events
        for i in range(self.events.count(), k):
            e = events[i]
            role = self._roles[i] if i < len(self._roles) else ""
            words = operator_stop_line(e) if role == "action" else event_sentence(e)
            t = self._event_t[i]
            when = f"{t:8.2f} s" if np.isfinite(t) else "   no time"  # never "nan s" or "-inf s"
            self.events.addItem(f"{when}  {role_label(e, role):8}  {words}")
            self.events.item(self.events.count() - 1).setToolTip(e.message)
        if 0 <= self._event_cursor < k and self.events.currentRow() != self._event_cursor:
            self.events.setCurrentRow(self._event_cursor)  # the event jumped to (or the last one passed)
        if self.source is not None and self.source.playing:
            self.events.scrollToBottom()

    def _read_failed(self, text: str) -> None:
        self.notify(text, "error")

    def _on_event(self, event: Event) -> None:
        """Events arrive on the bus while playing; the list follows the position in `_tick` instead."""
        self._sync_events(self.source.position_s if self.source is not None else 0.0)


def opening_words(path: Path, exc: Exception) -> str:
    """Why a recording did not open, in words: the reader's sentence, followed by the advice to choose a recording
    made by Cicatrix only for a file that is not one (a damaged or busy recording is one); an unexpected error (its
    trace is in the log) never shows the library's own text."""
    from workstation.recording.damaged import NotARecording

    if isinstance(exc, NotARecording):
        return f"{exc} Choose a recording made by Cicatrix (a .h5 file in recordings/)."
    if isinstance(exc, UserError):
        return str(exc)
    return f"{path} could not be opened: an unexpected error stopped the reading (details in the log)."
