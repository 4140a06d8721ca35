"""What is published while a recording closes: after the writer's last take and before the closing reopen.

The recorder stays subscribed until its close is done (workstation.session.rig.Rig.stop_recording), so an answer
that arrives during the close (a device's ACK to the STOP the session's end wrote without waiting, read on the
device's reader thread) reaches the recorder after the inbox has closed. Such events and command records are kept
here and written by the reopen that adds the closing attributes (`write_late`): everything published before the
file is sealed is in it. Past `limit` items they are only counted, and the file holds an event saying how many were
not kept; what comes after the seal is only counted (`SessionRecorder.refused_after_close`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import h5py

from workstation.bus import Event, now_s
from workstation.recording.inbox import Taken
from workstation.recording.slabs import RECORDER_SOURCE, RecorderStats, SlabWriter
from workstation.words import counted

log = logging.getLogger(__name__)

LATE_LIMIT = 50_000  # items kept for the closing reopen (tens of MB at most, for a publisher gone wild)


class LateItems:
    def __init__(self, limit: int = LATE_LIMIT) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._items: list[tuple[Any, ...]] = []
        self.not_kept = 0  # past the limit, before the seal: named in the file by an event
        self.after_seal = 0  # after the file was sealed: only counted
        self.written = 0  # kept and written by the closing reopen
        self.sealed = False

    def add(self, item: tuple[Any, ...]) -> None:
        """An event or command the inbox refused (its last take is done)."""
        with self._lock:
            if self.sealed:
                self.after_seal += 1
            elif len(self._items) >= self.limit:
                self.not_kept += 1
            else:
                self._items.append(item)

    def seal(self) -> tuple[list[tuple[Any, ...]], int]:
        """Everything kept, and how many were not; later items are only counted."""
        with self._lock:
            self.sealed = True
            items, self._items = self._items, []
            return items, self.not_kept

    def seal_for_good(self, path: object) -> None:
        """No closing reopen will write what is kept (it was done, not possible or failed): sealed now, so that a
        line printed from here on says the file does not hold its event (SessionRecorder.takes_more); what was kept
        and is not written is logged, as the file cannot say it."""
        items, _ = self.seal()
        if items:
            log.warning("%s published while %s was closing are not in it: its closing reopen did not write them",
                        counted(len(items), "event or command", "events or commands"), path)


def write_late(h5: h5py.File, late: LateItems, stats: RecorderStats) -> None:
    """Append the items published during the close to the reopened file (`/events`, `/commands`), with an event
    saying how many could not be kept, if any."""
    items, not_kept = late.seal()
    items = [i for i in items if i[0] in ("event", "command")]
    if not_kept:
        items.append(("event", Event(now_s(), "recording", "high", RECORDER_SOURCE,
                                     f"{counted(not_kept, 'event or command', 'events or commands')} published while "
                                     "the recording was closing could not be kept; they are not in this file.",
                                     {"items_not_recorded": not_kept})))
    if not items:
        return
    try:
        SlabWriter(h5, stats).write(Taken(items))
    except Exception as exc:  # noqa: BLE001 - the closing attributes matter more; append() left no empty rows
        log.warning("%s published during the close of %s could not be written: %s",
                    counted(len(items), "item"), h5.filename, exc)
        return
    late.written = len(items) - (1 if not_kept else 0)
    log.info("%s published during the close of %s written by its closing reopen", counted(late.written, "item"),
             h5.filename)

