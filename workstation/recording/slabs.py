"""The file side of the recorder: creates the layout of `format.py` and appends what the writer thread collected,
one slab per dataset per flush (an HDF5 append costs about the same for 1 row as for 1000)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from drivers.types import DriverInfo, Identity
from workstation.bus import CommandRecord, Event
from workstation.recording import format as fmt
from workstation.recording.clean import clean_attr, clean_fields, clean_text, json_with_notes
from workstation.recording.inbox import Loss, Taken
from workstation.terminal import quoted
from workstation.words import counted, seconds

RECORDER_SOURCE = "recorder"  # events with this source are written by the recorder itself, not taken from the bus
# Per device, the host times of the last slabs written are kept (about 16 s at the 250 ms cadence): a write the disk
# refused can leave rows that never reached the file, and their loss is recorded with their times (unwritten.py).
RECENT_SLABS = 64


@dataclass(slots=True)
class RecorderStats:
    rows_written: dict[str, int] = field(default_factory=dict)
    samples_lost: dict[str, int] = field(default_factory=dict)
    events_written: int = 0
    commands_written: int = 0
    flushes: int = 0
    max_append_interval_s: float = 0.0  # longest time between the starts of two consecutive appends
    fsync_s_total: float = 0.0
    fsync_s_max: float = 0.0
    fsyncs: int = 0  # run on their own thread (recording/syncer.py): fewer than flushes when the disk is slow
    room_hold_s_total: float = 0.0  # holding the close's room past the file's end at each flush (writer._hold_room)
    room_hold_s_max: float = 0.0
    writer_cpu_s: float = 0.0
    max_queue_items: int = 0
    max_queue_rows: int = 0

    def note_room_hold(self, seconds: float) -> None:
        self.room_hold_s_total += seconds
        self.room_hold_s_max = max(self.room_hold_s_max, seconds)


def write_root(h5: h5py.File, root_attrs: dict[str, Any]) -> None:
    """Root attributes and the session-wide tables, created empty and growable."""
    h5.attrs.update({"format": fmt.FORMAT_NAME, "format_version": fmt.FORMAT_VERSION, fmt.SIGNATURE_EXPECTED: True,
                     **{k: clean_attr(v) for k, v in root_attrs.items()}})
    h5.create_group(fmt.DEVICES_GROUP)
    for name, dtype in ((fmt.EVENTS, fmt.EVENT_DTYPE), (fmt.COMMANDS, fmt.COMMAND_DTYPE), (fmt.PLAN, fmt.PLAN_DTYPE)):
        ds = h5.create_dataset(name, (0,), dtype=dtype, maxshape=(None,), chunks=(fmt.SMALL_CHUNK_ROWS,))
        ds.attrs["t_host_s.unit"] = "s"


class SlabWriter:
    """Owns the datasets of an open recording; used by the writer thread only (and before it starts)."""

    def __init__(self, h5: h5py.File, stats: RecorderStats) -> None:
        self.h5 = h5
        self.stats = stats
        self.t0_host_s = float(h5.attrs.get("t0_host_s", 0.0))  # session time 0, for the words of a loss
        self.dtypes: dict[str, np.dtype] = {}
        self._telemetry: dict[str, h5py.Dataset] = {}
        self._index: dict[str, h5py.Dataset] = {}
        self._losses: dict[str, h5py.Dataset] = {}
        # The session tables, opened once: a dataset object made per write and freed while a write fails (a full
        # disk) makes HDF5 flush it on the way out, fail again, and leave the file in a state its close crashes on.
        self._tables: dict[str, h5py.Dataset] = {}
        self.recent: dict[str, deque[tuple[int, np.ndarray]]] = {}  # device -> (first row, host times) per slab

    def table(self, name: str) -> h5py.Dataset:
        ds = self._tables.get(name)
        if ds is None:
            ds = self._tables[name] = self.h5[name]
        return ds

    def add_device(self, name: str, driver_info: DriverInfo, identity: Identity, block_dtype: np.dtype,
                   calibration: dict[str, Any]) -> None:
        block_dtype = np.dtype(block_dtype)
        channels = {c.name: c for c in driver_info.channels}
        missing = [f for f in block_dtype.names or () if f not in channels]
        if missing:
            raise ValueError(f"{driver_info.name} declares no channel (unit) for block fields {missing}")
        g = self.h5[fmt.DEVICES_GROUP].create_group(name)
        extra = identity.extra
        attrs = {
            "driver_name": driver_info.name, "driver_kind": driver_info.kind, "driver_version": driver_info.version,
            "driver_description": driver_info.description, "nominal_rate_hz": driver_info.nominal_rate_hz,
            "model": identity.model, "serial_number": identity.serial_number, "firmware": identity.firmware,
            "device_protocol_version": identity.protocol_version,
            "identity_json": json_with_notes(identity.as_dict()),
            "calibration_json": json_with_notes(calibration),
        }
        if "lamp_hours" in extra:
            attrs["lamp_hours_h"] = float(extra["lamp_hours"])
        if "cartridge_strokes" in extra:
            attrs["cartridge_strokes"] = int(extra["cartridge_strokes"])
        g.attrs.update({k: clean_attr(v) for k, v in attrs.items()})
        ds = g.create_dataset(fmt.TELEMETRY, (0,), dtype=block_dtype, maxshape=(None,),
                              chunks=(fmt.TELEMETRY_CHUNK_ROWS,))
        for f in block_dtype.names or ():
            ds.attrs[f + fmt.UNIT_SUFFIX] = clean_attr(channels[f].unit)
            ds.attrs[f + fmt.DESCRIPTION_SUFFIX] = clean_attr(channels[f].description)
        self._telemetry[name] = ds
        self._index[name] = g.create_dataset(fmt.INDEX, (0,), dtype=fmt.INDEX_DTYPE, maxshape=(None,),
                                             chunks=(fmt.SMALL_CHUNK_ROWS,))
        self._losses[name] = g.create_dataset(fmt.LOSSES, (0,), dtype=fmt.LOSS_DTYPE, maxshape=(None,),
                                              chunks=(fmt.SMALL_CHUNK_ROWS,))
        self.dtypes[name] = block_dtype
        self.stats.rows_written[name] = 0
        self.stats.samples_lost[name] = 0

    def attach(self, name: str) -> None:
        """Take the datasets of a device the file already holds (the closing reopen)."""
        g = self.h5[fmt.DEVICES_GROUP][name]
        self._telemetry[name], self._index[name], self._losses[name] = g[fmt.TELEMETRY], g[fmt.INDEX], g[fmt.LOSSES]
        self.dtypes[name] = self._telemetry[name].dtype

    def datasets(self) -> list[h5py.Dataset]:
        """Every dataset object this writer holds open."""
        return [*self._telemetry.values(), *self._index.values(), *self._losses.values(), *self._tables.values()]

    def write(self, taken: Taken) -> None:
        blocks: dict[str, list[np.ndarray]] = {}
        events: list[Event] = []
        commands: list[CommandRecord] = []
        plans: list[tuple[float, str]] = []
        for item in taken.items:
            kind = item[0]
            if kind == "block":
                blocks.setdefault(item[1], []).append(item[2])
            elif kind == "event":
                events.append(item[1])
            elif kind == "command":
                commands.append(item[1])
            else:
                plans.append((item[1], item[2]))
        for device, parts in blocks.items():
            self._telemetry_slab(device, parts, events)
        for device, loss in taken.losses.items():
            self.loss(device, loss, events)
        if events:
            append(self.table(fmt.EVENTS), np.array([event_row(e) for e in events], dtype=fmt.EVENT_DTYPE))
            self.stats.events_written += len(events)
        if commands:
            append(self.table(fmt.COMMANDS), np.array([command_row(c) for c in commands], dtype=fmt.COMMAND_DTYPE))
            self.stats.commands_written += len(commands)
        if plans:
            append(self.table(fmt.PLAN), np.array([(t, clean_text(j)[0]) for t, j in plans], dtype=fmt.PLAN_DTYPE))

    def _telemetry_slab(self, device: str, parts: list[np.ndarray], events: list[Event]) -> None:
        dtype = self.dtypes.get(device)
        good = [b for b in parts if b.dtype == dtype] if dtype is not None else []
        bad = sum(len(b) for b in parts) - sum(len(b) for b in good)
        if bad:
            why = "an unregistered device" if dtype is None else "a block layout that differs from the declared one"
            t = np.concatenate([b["t_host_s"] for b in parts if b.dtype != dtype])
            if device in self._losses:
                self.loss(device, Loss(float(t.min()), float(t.max()), bad), events, why=why)
            else:
                events.append(Event(float(t.min()), "alarm", "high", RECORDER_SOURCE,
                                    f"{counted(bad, 'sample')} from {why} ({quoted(device)}) could not be recorded.",
                                    {"device": device, "samples_lost": bad}))
        if not good:
            return
        rows = good[0] if len(good) == 1 else np.concatenate(good)
        n0 = append(self._telemetry[device], rows)
        append(self._index[device], np.array([(n0, rows["t_host_s"][0])], dtype=fmt.INDEX_DTYPE))
        self.stats.rows_written[device] += len(rows)
        self.recent.setdefault(device, deque(maxlen=RECENT_SLABS)).append((n0, rows["t_host_s"].copy()))

    def loss(self, device: str, loss: Loss, events: list[Event], why: str = "the queue ceiling") -> None:
        """Record samples of `device` the file does not hold: a `losses` row, the count, an alarm event (appended to
        `events`, for the caller to write)."""
        append(self._losses[device], np.array([(loss.t_first_host_s, loss.t_last_host_s, loss.samples)],
                                              dtype=fmt.LOSS_DTYPE))
        self.stats.samples_lost[device] += loss.samples
        events.append(Event(loss.t_first_host_s, "alarm", "high", RECORDER_SOURCE,
                            f"{counted(loss.samples, 'sample')} of {device} {'was' if loss.samples == 1 else 'were'} lost ({why}) "
                            f"between {seconds(loss.t_first_host_s - self.t0_host_s)} and {seconds(loss.t_last_host_s - self.t0_host_s)} "
                            "of the session.",
                            {"device": device, "samples_lost": loss.samples, "cause": why,
                             "t_first_host_s": loss.t_first_host_s, "t_last_host_s": loss.t_last_host_s}))


def event_row(e: Event) -> tuple:
    """An `/events` row: texts cleaned, details as strict JSON with notes of what was changed (clean.py)."""
    texts, details = clean_fields({"kind": e.kind, "severity": e.severity, "source": e.source, "message": e.message},
                                  e.details)
    return (e.t_host_s, texts["kind"], texts["severity"], texts["source"], texts["message"], details)


def command_row(c: CommandRecord) -> tuple:
    """A `/commands` row: texts cleaned; the notes of what was changed go into `args_json`."""
    texts, args = clean_fields({"device": c.device, "command": c.command, "result": c.result}, c.args)
    return (c.t_host_s, texts["device"], texts["command"], args, texts["result"], c.t_reply_s)


def append(ds: h5py.Dataset, rows: np.ndarray) -> int:
    """Append rows as one slab; return the index of the first one.

    The rows are converted before the dataset grows, and a write that fails shrinks it back when it can, so a
    failure leaves no rows allocated but never written (they would read back as zeros).
    """
    n0 = ds.shape[0]
    ds.resize((n0 + len(rows),))
    try:
        ds[n0:] = rows
    except BaseException:
        try:
            ds.resize((n0,))
        except Exception:  # noqa: BLE001 - the first error is the one to report; the reader skips empty rows
            pass
        raise
    return n0
