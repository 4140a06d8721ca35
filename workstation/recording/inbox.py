"""The recorder's inbox: callers append without ever waiting on the disk; the writer thread takes everything at once.

Closing is part of the inbox: `close_and_take` hands the writer the last items and, under the same lock, makes
every later `put` return "closed". So whatever was published before the recorder's final take is in the file, and
whatever came after is refused visibly rather than left behind in a queue nobody reads.

Two limits instead of one: past `alarm_rows` queued samples the caller is told (an alarm) but the samples are kept;
past `ceiling_bytes` of queued samples they are counted as lost, per device with their time span, and the writer
records that count in the file. Nothing is dropped without a trace.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(slots=True)
class Loss:
    """Samples of one device that did not fit under the ceiling."""

    t_first_host_s: float
    t_last_host_s: float
    samples: int


@dataclass(slots=True)
class Taken:
    items: list[tuple[Any, ...]] = field(default_factory=list)
    losses: dict[str, Loss] = field(default_factory=dict)


class Inbox:
    def __init__(self, alarm_rows: int, ceiling_bytes: int) -> None:
        self.alarm_rows = alarm_rows
        self.ceiling_bytes = ceiling_bytes
        self._lock = threading.Lock()
        self._items: list[tuple[Any, ...]] = []
        self._rows = 0
        self._bytes = 0
        self._losses: dict[str, Loss] = {}
        self.max_depth_items = 0
        self.max_depth_rows = 0
        self.closed = False
        self.refused_after_close = 0  # items published after the final take (counted, for tests and the summary)

    def put(self, item: tuple[Any, ...]) -> bool:
        """Queue an item that carries no samples (event, command, plan): kept unless the inbox is closed."""
        with self._lock:
            if self.closed:
                self.refused_after_close += 1
                return False
            self._items.append(item)
            self._note_depth()
            return True

    def put_block(self, device: str, block: np.ndarray) -> str:
        """Queue a block of samples: "kept", "alarm" (kept, but the queue is above its alarm level) or "lost"."""
        n = len(block)
        with self._lock:
            if self.closed:
                self.refused_after_close += 1
                return "closed"
            if self._bytes + block.nbytes > self.ceiling_bytes:
                t = block["t_host_s"]
                loss = self._losses.get(device)
                if loss is None:
                    self._losses[device] = Loss(float(t[0]), float(t[-1]), n)
                else:
                    loss.t_last_host_s = float(t[-1])
                    loss.samples += n
                return "lost"
            self._items.append(("block", device, block))
            self._rows += n
            self._bytes += block.nbytes
            self._note_depth()
            return "alarm" if self._rows > self.alarm_rows else "kept"

    def _note_depth(self) -> None:
        self.max_depth_items = max(self.max_depth_items, len(self._items))
        self.max_depth_rows = max(self.max_depth_rows, self._rows)

    def take_all(self, *, close: bool = False) -> Taken:
        """Everything queued; with `close`, the last take: later puts are refused."""
        with self._lock:
            taken = Taken(self._items, self._losses)
            self._items, self._losses = [], {}
            self._rows = self._bytes = 0
            if close:
                self.closed = True
        return taken

    @property
    def rows(self) -> int:
        return self._rows

    def __len__(self) -> int:
        return len(self._items)
