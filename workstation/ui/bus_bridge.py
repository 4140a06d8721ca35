"""From worker threads to the GUI thread: bus events and finished background tasks, through one queue and one timer.

The bus calls its sinks on the device reader threads. `BusBridge` is a sink that only enqueues events (samples go to
`PlotBuffers`, not here), and a `QTimer` on the GUI thread drains the queue and emits one Qt signal per event.
`ActivityWatch` keeps only whether each device's latest block shows it active. `Tasks` runs blocking calls
(connecting devices, a step, the store, opening a file) one at a time on a worker thread and hands each result or error
back through the same kind of queue, so the GUI never waits on a device or the disk.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from workstation.bus import BaseSink, Event
from workstation.errors import UserError
from workstation.session import roles
from workstation.session.session import SessionError

log = logging.getLogger(__name__)

DRAIN_MS = 20
MAX_PER_DRAIN = 500


class BusBridge(QObject, BaseSink):
    """A bus sink whose events come out as the `received` signal on the GUI thread."""

    received = pyqtSignal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.timer = QTimer(self)
        self.timer.setInterval(DRAIN_MS)
        self.timer.timeout.connect(self.drain)
        self.timer.start()

    # --- sink (any thread) ---------------------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        self._queue.put(event)

    # --- GUI thread ----------------------------------------------------------------------------------------------
    def drain(self) -> None:
        for _ in range(MAX_PER_DRAIN):
            try:
                ev = self._queue.get_nowait()
            except queue.Empty:
                return
            self.received.emit(ev)


class ActivityWatch(BaseSink):
    """A bus sink remembering whether each device's latest block shows it active, read on the channel its driver
    declares (`watch(devices)`: workstation/session/roles.py)."""

    def __init__(self) -> None:
        self.active: dict[str, bool] = {}
        self.channels: dict[str, str | None] = {}  # device name -> its active channel

    def watch(self, devices: Mapping[str, Any]) -> None:
        """Follow these devices (a new rig): their active channels from their drivers; what was seen is forgotten."""
        self.channels = roles.active_channels(devices)
        self.active.clear()

    def on_block(self, device: str, block: np.ndarray) -> None:
        active = roles.active_flags(block, self.channels.get(device)) if len(block) else None
        if active is not None:
            self.active[device] = bool(active[-1])


class Tasks(QObject):
    """Background calls, one at a time on one worker thread, whose outcome is delivered on the GUI thread.

    One thread keeps the order of a session's work (connect, plan, steps, saving) and keeps the clinic store, an
    SQLite connection, on the thread that opened it.
    """

    def __init__(self, name: str = "gui-worker", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._done: queue.SimpleQueue[tuple[Callable[[Any], None], Any]] = queue.SimpleQueue()
        self.busy = 0  # tasks submitted and not yet delivered
        self.timer = QTimer(self)
        self.timer.setInterval(DRAIN_MS)
        self.timer.timeout.connect(self.drain)
        self.timer.start()

    def run(self, fn: Callable[[], Any], on_done: Callable[[Any], None],
            on_error: Callable[[Exception], None]) -> Future:
        self.busy += 1

        def work() -> None:
            try:
                result = fn()
            except (UserError, SessionError) as exc:  # a refusal in words for the user: not a failure to trace
                log.info("background task refused: %s", exc)
                self._done.put((on_error, exc))
            except Exception as exc:  # noqa: BLE001 - handed to on_error on the GUI thread
                log.warning("background task failed", exc_info=True)
                self._done.put((on_error, exc))
            else:
                self._done.put((on_done, result))

        return self._pool.submit(work)

    def drain(self) -> None:
        while True:
            try:
                callback, value = self._done.get_nowait()
            except queue.Empty:
                return
            self.busy -= 1
            try:
                callback(value)
            except Exception:  # noqa: BLE001 - a broken callback must not stop the others
                log.exception("task callback failed")

    def shutdown(self, wait: bool = True) -> None:
        self.timer.stop()
        self._pool.shutdown(wait=wait)
