"""The recording's fsync on a thread of its own.

The writer thread appends on its fixed cadence (at most 250 ms apart: what a killed process can lose) and asks for an
fsync after each flush; this thread runs them one at a time, each covering every flush asked before it began. A disk
slow to sync (a shared disk busy with other work: one fsync took 457 ms at load 4, docs/benchmarks.md) then delays
only the durability against a power cut, by that fsync's time, never the appends: run inline, the fsync held the
appends 461 ms apart (the twelfth issue's ninth case, measured again by its fourteenth session).
"""

from __future__ import annotations

import os
import threading
import time

from workstation.recording.slabs import RecorderStats


def fsync(fd: int, stats: RecorderStats) -> None:
    """fsync the file descriptor `fd`, its time added to `stats` (fsync_s_total, fsync_s_max). OSError as os.fsync."""
    t = time.perf_counter()
    os.fsync(fd)
    dt = time.perf_counter() - t
    stats.fsync_s_total += dt
    stats.fsync_s_max = max(stats.fsync_s_max, dt)
    stats.fsyncs += 1


class Syncer:
    """fsyncs of one open file, asked by its writer (`ask`), run on the thread "recorder-fsync". `error`: the OSError
    an fsync met (a failing or full disk), raised by the next `ask` so the writer stops as on any write failure."""

    def __init__(self, fd: int, stats: RecorderStats) -> None:
        self._fd = fd
        self._stats = stats
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self.error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="recorder-fsync", daemon=True)
        self._thread.start()

    def ask(self) -> None:
        """After a flush: sync it, with any flush asked before, as soon as this thread is free. Raises the OSError an
        earlier fsync met."""
        if self.error is not None:
            raise self.error
        self._wanted.set()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """End the thread once the fsync under way (if any) returns; True if it ended within `timeout_s` (a disk that
        hangs may hold it longer: the caller goes on, and the thread ends by itself, never syncing again)."""
        self._stopping.set()
        self._wanted.set()
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def sync_now(self) -> None:
        """One fsync on the caller's thread (the last, after `stop`, before the file closes). OSError as os.fsync."""
        fsync(self._fd, self._stats)

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._stopping.is_set():
                return
            try:
                fsync(self._fd, self._stats)
            except OSError as exc:
                self.error = exc
                return
