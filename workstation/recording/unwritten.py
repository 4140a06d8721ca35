"""Telemetry that a failed write left out of the file, counted by the closing reopen: never a silent loss.

A write the disk refused (full, an I/O error) can fail after h5py took rows into its cache: the dataset's extent
counts them, yet they never reached the file and read back as zeros (host time 0; the tenth session's fresh tester:
4 400 samples counted, 4 096 in the file, "0 lost"). And once the recorder has stopped, the blocks the devices still
send until the session has stopped them are refused. When the disk lets the closing reopen run
(`SessionRecorder.close`), `count_unwritten` makes the file say both, per device, as every loss is said
(docs/recording-format.md, "Losses"): a `losses` row with the samples' first and last host times, an alarm event, and
`samples_lost`; trailing rows never written are cut off (the extent and `samples` are the rows the file holds) and
their index entries with them. A row never written between written ones (a chunk the disk refused in the middle) is
counted, and stays, at host time 0, which every reader skips.
"""

from __future__ import annotations

import threading

import h5py
import numpy as np

from workstation.bus import Event, now_s
from workstation.recording import format as fmt
from workstation.recording.inbox import Loss, Taken
from workstation.recording.late import LateItems
from workstation.recording.slabs import RecorderStats, SlabWriter

NOT_WRITTEN = "the disk refused the write: never in the file"
REFUSED = "sent after the recording had stopped"


class Refused:
    """Blocks the recorder refused after it stopped (a write failure), per device: (first, last host time, samples).
    `add` is called on the devices' reader threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_device: dict[str, Loss] = {}

    def add(self, device: str, block: np.ndarray) -> None:
        t = block["t_host_s"]
        t = t[np.isfinite(t)] if np.isfinite(t).any() else np.array([now_s()])  # no time of its own: its arrival
        self.add_loss(device, Loss(float(t.min()), float(t.max()), len(block)))

    def add_loss(self, device: str, loss: Loss) -> None:
        with self._lock:
            old = self._by_device.get(device)
            self._by_device[device] = loss if old is None else _merged(old, loss)

    def take(self) -> dict[str, Loss]:
        with self._lock:
            taken, self._by_device = self._by_device, {}
            return taken


def counts(stats: RecorderStats) -> tuple[dict, dict, int, int]:
    """What the file holds so far, by the writer's counts: `keep_unwritten`'s `before`."""
    return dict(stats.rows_written), dict(stats.samples_lost), stats.events_written, stats.commands_written


def keep_unwritten(taken: Taken, before: tuple[dict, dict, int, int], stats: RecorderStats, not_written: Refused,
                   late: LateItems) -> None:
    """The part of the writer's take that a failed write did not put in the file (`before`: the counts before it):
    its telemetry and losses counted in `not_written`, its events and commands kept in `late` for the closing
    reopen. One append per device takes all of its rows or none (slabs.append shrinks back)."""
    rows, lost, events, commands = before
    for item in taken.items:
        if item[0] == "block" and stats.rows_written.get(item[1], 0) == rows.get(item[1], 0):
            not_written.add(item[1], item[2])
        elif (item[0] == "event" and stats.events_written == events) or \
                (item[0] == "command" and stats.commands_written == commands):
            late.add(item)
    for device, loss in taken.losses.items():
        if stats.samples_lost.get(device, 0) == lost.get(device, 0):
            not_written.add_loss(device, loss)


def count_unwritten(h5: h5py.File, slabs: SlabWriter, not_written: dict[str, Loss],
                    refused: dict[str, Loss]) -> list[Event]:
    """In the reopened file: per device of `slabs` (the writer's, with its counts and recent slab times), cut the
    trailing rows never written, record every counted row the file lacks, the blocks of the failed write
    (`not_written`) and those refused after it as losses. Returns the alarm events to write. Raises what h5py raises
    (the caller's close reports it)."""
    events: list[Event] = []
    closing = SlabWriter(h5, slabs.stats)
    for name in list(slabs.dtypes):
        closing.attach(name)
        ds = h5[fmt.DEVICES_GROUP][name][fmt.TELEMETRY]
        counted_rows = slabs.stats.rows_written[name]
        t = ds.fields("t_host_s")[:counted_rows] if ds.shape[0] else np.empty(0)
        written = np.flatnonzero(t != 0.0)
        extent = int(written[-1]) + 1 if len(written) else 0
        missing = np.r_[np.flatnonzero(t[:extent] == 0.0), np.arange(extent, counted_rows)]
        if ds.shape[0] > extent:
            ds.resize((extent,))
            index = h5[fmt.DEVICES_GROUP][name][fmt.INDEX]
            kept = index[:]
            kept = kept[(kept["row"] < extent) & (kept["t_host_s"] != 0.0)]
            index.resize((len(kept),))
            index[...] = kept
        slabs.stats.rows_written[name] = extent
        if len(missing):  # counted as written, yet not in the file
            loss = _loss_of(slabs, name, missing, t, float(h5.attrs["t0_host_s"]))
            not_written[name] = _merged(not_written[name], loss) if name in not_written else loss
        if name in not_written:
            closing.loss(name, not_written[name], events, why=NOT_WRITTEN)
        if name in refused:
            closing.loss(name, refused[name], events, why=REFUSED)
    return events


def _merged(a: Loss, b: Loss) -> Loss:
    return Loss(float(np.fmin(a.t_first_host_s, b.t_first_host_s)), float(np.fmax(a.t_last_host_s, b.t_last_host_s)),
                a.samples + b.samples)


def _loss_of(slabs: SlabWriter, name: str, rows: np.ndarray, t_file: np.ndarray, t0: float) -> Loss:
    """The loss of `rows` (indices): their host times from the writer's recent slabs; where one is not known (older
    than those), the span is widened to the rows the file holds around them (else the session's start), so it always
    contains them."""
    t = np.full(len(rows), np.nan)
    for n0, times in slabs.recent.get(name, ()):
        inside = (rows >= n0) & (rows < n0 + len(times))
        t[inside] = times[rows[inside] - n0]
    if np.isfinite(t).all():
        return Loss(float(t.min()), float(t.max()), len(rows))
    held_before = t_file[:rows.min()][t_file[:rows.min()] != 0.0]
    held_after = t_file[rows.max() + 1:][t_file[rows.max() + 1:] != 0.0]
    first = float(held_before[-1]) if len(held_before) else t0
    last = float(held_after[0]) if len(held_after) else float(np.nanmax(np.r_[t, first]))
    return Loss(first, last, len(rows))
