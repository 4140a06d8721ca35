"""Replay: a recording played back onto a SessionBus as if it were the devices.

Consumers (plots, the safety monitor, anything subscribed) receive the recorded blocks, events and commands with
their recorded timestamps, in time order, from the replay's own thread, paced by the host clock at 0.1x to 100x.
At 1x a block is about one recorded frame (10 ms); faster, blocks grow (up to `max_chunk_s` of stream) so 100x
(400k rows/s for two devices at 2 kHz) keeps up. The recording is opened read-only: replay never writes to it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from workstation.bus import Event, SessionBus
from workstation.recording.errors import RecordingError
from workstation.recording.reader import Recording

MIN_SPEED, MAX_SPEED = 0.1, 100.0
READ_ROWS = 32768  # rows read from the file at a time per device (~1.3 MB, 16 s at 2 kHz)


class _DeviceCursor:
    """The next row of one device to publish, with a read-ahead buffer. Owned by the replay thread."""

    def __init__(self, recording: Recording, device: str) -> None:
        self.rec, self.device = recording, device
        self.next_row = 0
        self._buf = recording.rows(device, 0, 0)
        self._t = self._buf["t_host_s"]
        self._buf_start = 0

    def seek(self, row: int) -> None:
        self.next_row = row

    def take_before(self, t_abs: float) -> np.ndarray | None:
        """Rows from the cursor with t_host_s < t_abs (None if there are none); the cursor moves past them."""
        parts = []
        while True:
            local = self.next_row - self._buf_start
            if not 0 <= local < len(self._buf):
                self._buf = self.rec.rows(self.device, self.next_row, self.next_row + READ_ROWS)
                self._t = self._buf["t_host_s"]
                self._buf_start, local = self.next_row, 0
                if len(self._buf) == 0:
                    break
            k = int(np.searchsorted(self._t[local:], t_abs, "left"))
            if k:
                parts.append(self._buf[local:local + k])
                self.next_row += k
            if local + k < len(self._buf):
                break
        if not parts:
            return None
        return parts[0].copy() if len(parts) == 1 else np.concatenate(parts)


@dataclass(slots=True)
class _Request:
    direction: int
    done: threading.Event = field(default_factory=threading.Event)
    result: Event | None = None


class ReplaySource:
    """Plays a Recording onto a bus. Every control is thread-safe; the replay starts paused at 0 s."""

    def __init__(
        self,
        recording: Recording,
        bus: SessionBus,
        *,
        speed: float = 1.0,
        loop: bool = False,
        tick_s: float = 0.01,
        max_chunk_s: float = 0.1,
        on_seek: Callable[[float], None] | None = None,
        on_end: Callable[[], None] | None = None,
        on_error: Callable[[RecordingError], None] | None = None,
    ) -> None:
        """`on_error`: called on the replay thread with the reader's sentence when a part of the file cannot be read
        while playing, seeking or stepping (a damaged chunk); the replay pauses there and its thread lives on."""
        self.recording = recording
        self.bus = bus
        self.loop = loop
        self.tick_s = tick_s
        self.max_chunk_s = max_chunk_s
        self._on_seek = on_seek
        self._on_end = on_end
        self._on_error = on_error
        self.error: RecordingError | None = None  # the last part of the file that could not be read
        self._t0 = recording.meta.t0_host_s
        self.duration_s = recording.duration_s
        self._events = list(recording.events)
        self._event_t = np.array([e.t_host_s - self._t0 for e in self._events], dtype=float)
        self._commands = list(recording.commands)
        self._command_t = np.array([c.t_host_s - self._t0 for c in self._commands], dtype=float)
        self._cursors = [_DeviceCursor(recording, d) for d in recording.devices]
        self._next_event = 0
        self._next_command = 0
        self._cond = threading.Condition()
        self._speed = self._check_speed(speed)
        self._playing = False
        self._publishing = False  # the replay thread is publishing a range (outside the lock)
        self._closing = False
        self._pos = 0.0  # session s: everything before it has been published
        self._anchor_pos, self._anchor_wall = 0.0, time.monotonic()
        self._gen = 0  # bumped by every seek: a range being published when it changes is abandoned
        self._pending_seek: float | None = None
        self._requests: list[_Request] = []
        self.finished = threading.Event()
        self.lag_s = 0.0  # how far the last published position was behind the host clock's target, in stream s
        self._thread = threading.Thread(target=self._run, name="replay", daemon=True)
        self._thread.start()

    # --- controls (any thread) ------------------------------------------------------------------------------------
    @staticmethod
    def _check_speed(x: float) -> float:
        if not MIN_SPEED <= x <= MAX_SPEED:
            raise ValueError(f"replay speed must be within {MIN_SPEED}x–{MAX_SPEED:g}x, not {x}x")
        return float(x)

    def play(self) -> None:
        with self._cond:
            if not self._playing:
                if self._pos >= self.duration_s and self._pending_seek is None:
                    self._seek_locked(0.0)
                self._anchor_pos = self._pending_seek if self._pending_seek is not None else self._pos
                self._anchor_wall = time.monotonic()
                self._playing = True
                self.finished.clear()
                self._cond.notify_all()

    def pause(self) -> None:
        """Stop playing. When it returns, nothing more is published and `position_s` stays where it is: the replay
        thread stops within the chunk it is publishing (at most `max_chunk_s` of data, milliseconds of work), and
        pause waits for that (at most 1 s, so a stalled reader cannot hang the caller)."""
        with self._cond:
            self._playing = False
            self._cond.notify_all()
            if threading.current_thread() is not self._thread:  # a sink on the replay thread may pause too
                self._cond.wait_for(lambda: not self._publishing, timeout=1.0)

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def speed(self) -> float:
        return self._speed

    def set_speed(self, x: float) -> None:
        x = self._check_speed(x)
        with self._cond:
            now = time.monotonic()
            self._anchor_pos += (now - self._anchor_wall) * self._speed if self._playing else 0.0
            self._anchor_wall, self._speed = now, x
            self._cond.notify_all()

    def seek(self, t_s: float) -> None:
        """Continue from session time t_s (clamped to the recording); nothing between is published."""
        with self._cond:
            self._seek_locked(t_s)
            self._cond.notify_all()

    def _seek_locked(self, t_s: float) -> None:
        t_s = min(max(float(t_s), 0.0), self.duration_s)
        self._pending_seek = t_s
        self._gen += 1
        self._anchor_pos, self._anchor_wall = t_s, time.monotonic()
        self._pos = t_s
        self.finished.clear()

    def step_event(self, direction: int = 1, timeout_s: float = 5.0) -> Event | None:
        """Jump to the next (+1) or previous (-1) recorded event and publish it; None if there is none."""
        if direction not in (1, -1):
            raise ValueError("direction must be +1 or -1")
        req = _Request(direction)
        with self._cond:
            self._requests.append(req)
            self._cond.notify_all()
        if not req.done.wait(timeout_s):
            raise TimeoutError("the replay thread did not answer")
        return req.result

    @property
    def position_s(self) -> float:
        return min(self._pos, self.duration_s)

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(5.0)

    # --- the replay thread ----------------------------------------------------------------------------------------
    def _apply_seek(self, t_s: float) -> None:
        for c in self._cursors:
            c.seek(self.recording.row_at(c.device, t_s))
        self._next_event = int(np.searchsorted(self._event_t, t_s, "left"))
        self._next_command = int(np.searchsorted(self._command_t, t_s, "left"))
        if self._on_seek is not None:
            self._on_seek(t_s)

    def _step(self, req: _Request) -> None:
        target = self._next_event if req.direction > 0 else self._next_event - 2
        if 0 <= target < len(self._events):
            t = float(self._event_t[target])
            with self._cond:
                self._seek_locked(t)
                self._pending_seek = None
                gen = self._gen
            self._apply_seek(t)
            self._next_event = target + 1
            self.bus.publish_event(self._events[target])
            req.result = self._events[target]
            with self._cond:
                if gen == self._gen:
                    self._anchor_pos, self._anchor_wall = t, time.monotonic()
        req.done.set()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._closing or self._requests or self._pending_seek is not None or self._playing):
                    self._cond.wait()
                if self._closing:
                    for r in self._requests:
                        r.done.set()
                    return
                requests, self._requests = self._requests, []
                seek, self._pending_seek = self._pending_seek, None
            try:
                if seek is not None:
                    self._apply_seek(seek)
                for r in requests:
                    self._step(r)
            except RecordingError as exc:
                self._failed(exc, requests)
                continue
            with self._cond:
                if not self._playing or self._pending_seek is not None or self._requests:
                    continue
                gen, start = self._gen, self._pos
                wall_target = self._anchor_pos + (time.monotonic() - self._anchor_wall) * self._speed
                target = min(wall_target, self.duration_s + 1e-9)
                self._publishing = True
            t_begin = time.monotonic()
            try:
                reached = self._publish_range(start, target, gen)
            except RecordingError as exc:
                reached = None
                self._failed(exc, [])
            finally:
                with self._cond:
                    self._publishing = False
                    self._cond.notify_all()
            with self._cond:
                if reached is None or gen != self._gen:
                    continue
                self._pos = reached
                if reached < target:  # paused within the range: everything before `reached` is published
                    continue
                self.lag_s = max(0.0, self._anchor_pos + (time.monotonic() - self._anchor_wall) * self._speed
                                 - target) if target < self.duration_s else 0.0
                ended = target >= self.duration_s
                if ended and self.loop:
                    self._seek_locked(0.0)
                elif ended:
                    self._playing = False
                    self.finished.set()
                else:
                    self._cond.wait(max(0.0, self.tick_s - (time.monotonic() - t_begin)))
            if ended and not self.loop and self._on_end is not None:
                self._on_end()

    def _failed(self, exc: RecordingError, requests: list[_Request]) -> None:
        """A part of the file could not be read (the reader's sentence): pause, answer the waiting steps, tell."""
        with self._cond:
            self._playing = False
            self.error = exc
            self._cond.notify_all()
        for r in requests:
            r.done.set()
        if self._on_error is not None:
            self._on_error(exc)

    def _publish_range(self, a: float, b: float, gen: int) -> float | None:
        """Publish everything in [a, b) session s in time order, chunk by chunk. Returns the session time reached: b,
        or less when a pause stopped it between chunks; None if a seek or close interrupted it."""
        t = a
        while t < b:
            if gen != self._gen or self._closing:
                return None
            if not self._playing:
                return t
            end = min(b, t + self.max_chunk_s)
            if self._next_event < len(self._events) and self._event_t[self._next_event] < end:
                t = max(t, float(self._event_t[self._next_event]))
                self._publish_telemetry_before(t)
                self._publish_commands_before(t)
                self.bus.publish_event(self._events[self._next_event])
                self._next_event += 1
                continue
            self._publish_telemetry_before(end)
            self._publish_commands_before(end)
            t = end
        return b

    def _publish_telemetry_before(self, t_s: float) -> None:
        for c in self._cursors:
            block = c.take_before(self._t0 + t_s)
            if block is not None:
                self.bus.publish_block(c.device, block)

    def _publish_commands_before(self, t_s: float) -> None:
        while self._next_command < len(self._commands) and self._command_t[self._next_command] < t_s:
            self.bus.publish_command(self._commands[self._next_command])
            self._next_command += 1
