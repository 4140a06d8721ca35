"""Reading a session recording: validation with a clear error, metadata, time windows of telemetry, events.

Opening never writes: a file the writer did not close (a live session, or a killed one) is opened in SWMR read mode,
which ignores the writer's open flag without clearing it, and the recording says it is partial. Opening never
blocks the writer either: the reader takes no file lock (it only reads, and SWMR keeps a live file consistent for
it), so a session can always close the file it records while someone looks at it.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from workstation.recording import format as fmt
from workstation.recording import unclosable
from workstation.recording.damaged import (
    HDF5_ERRORS,
    NotARecording,
    damaged_error,
    guarded,
    lost_signature_error,
    open_error,
    reading,
    refused_for_its_mark,
)
from workstation.recording.errors import RecordingError
from workstation.recording.heaps import damaged_heap
from workstation.recording.mark import held_by_a_process, swmr_mark
from workstation.recording.rows import (
    UNDECODABLE_KEY,
    command_row,
    event_row,
    json_value,
    note_in_words,
    plan_row,
    shown,
    text,
    written,
)
from workstation.terminal import quoted
from workstation.words import counted

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecordingMeta:
    format_version: int
    session_uuid: str
    start_time_utc: str
    end_time_utc: str | None  # None if the writer never closed the file
    t0_host_s: float  # session time 0 on the host's monotonic clock
    software_version: str
    mode: str
    patient_pseudonym: str
    operator_id: str
    protocol_id: str
    protocol_version: str


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    name: str
    driver_name: str
    driver_kind: str
    driver_version: str
    model: str
    serial_number: str
    firmware: str
    nominal_rate_hz: float
    units: dict[str, str]  # block field -> unit
    descriptions: dict[str, str]
    identity: dict[str, Any]  # everything the device reported, incl. lamp hours or cartridge strokes
    calibration: dict[str, Any]
    dtype: np.dtype


class Recording:
    """An open recording. Times given to and returned by methods named `*_s` are session seconds (0 = start).

    `events` are in time order (`t_host_s`, stable: rows of the same time keep the file's order; events at no time,
    a host time that is NaN or ±inf, come last in the file's order). The file keeps
    arrival order, and rows published by several threads can arrive a few ms out of time order; this is the one
    place that orders them, so every consumer (replay, the browser, inspect, audit, crash recovery) sees one order.
    `commands` and `plans` are in the file's order."""

    def __init__(self, path: Path, h5: h5py.File, partial_reason: str | None) -> None:
        self.path = path
        self._h5 = h5
        self.partial_reason = partial_reason
        if not h5.swmr_mode and (where := damaged_heap(path, h5)) is not None:  # before any text is read (heaps.py)
            raise damaged_error(path, None, f"{where} is damaged (HDF5 would go on reading it for ever)")
        self.meta = _read_meta(path, h5)
        if partial_reason is None and self.meta.end_time_utc is None:  # its open mark cleared since, or never set
            self.partial_reason = ("it has no closing attributes: the writer stopped before closing it (a crash, a "
                                   "kill, a power cut, a full disk or a file size limit), or another program held it open for writing "
                                   "as its session ended; everything up to its last flush is in it")
        if self.partial_reason is None and not bool(h5.attrs.get("closed_cleanly", True)):
            self.partial_reason = f"the recorder stopped on an error: {note_in_words(h5.attrs.get('close_note', '?'))}"
        self._partial_base = self.partial_reason  # what the file says; `refresh` may add what cannot be read live
        self.devices: dict[str, DeviceInfo] = {}
        self._telemetry: dict[str, h5py.Dataset] = {}
        try:
            for name, g in h5[fmt.DEVICES_GROUP].items():
                self.devices[name] = _read_device(name, g)
                self._telemetry[name] = g[fmt.TELEMETRY]
        except HDF5_ERRORS as exc:
            raise damaged_error(path, exc, "its device descriptions are unreadable") from exc
        self.refresh()

    # --- opening --------------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> Recording:
        path = Path(path)
        if not path.is_file():
            raise RecordingError(f"{path}: no such recording file.")
        try:
            is_hdf5 = h5py.is_hdf5(path)
        except OSError as exc:
            log.info("reading %s: %s", path, exc)
            raise RecordingError(f"{path} cannot be read ({(exc.strerror or 'the system refused').lower()}): check "
                                 "it is yours to read and try again.") from exc
        if not is_hdf5:  # or not yet: the instant its writer creates it
            raise written_now(path) or lost_signature_error(path)
        partial_reason = None
        try:
            h5 = _open_unlocked(path)
        except HDF5_ERRORS as exc:  # h5py raises RuntimeError for some damaged superblocks
            if not refused_for_its_mark(exc):
                raise open_error(path, exc) from exc
            # written by a SWMR writer that has not closed it (live, or killed): a SWMR reader ignores the mark
            partial_reason = unclosed_reason(path)  # asked before this reader holds the file itself
            try:
                h5 = _open_unlocked(path, swmr=True)
            except HDF5_ERRORS as exc2:
                raise open_error(path, exc2) from exc2
        try:
            with reading(path):  # whatever h5py raises on damaged metadata: the one damaged sentence
                return cls(path, h5, partial_reason)
        except RecordingError as exc:  # unless a program is writing it that moment (open_error: the same rule)
            h5.close()
            if (in_use := written_now(path)) is None:
                raise
            raise in_use from exc
        except BaseException:
            h5.close()
            raise

    def refresh(self) -> None:
        """Re-read the extents (to follow a file being written) and the events, commands and plans.

        A live file's newest text rows (events, commands, plans: variable-length strings, kept in HDF5's global
        heap, which SWMR does not make readable while the file is written: "address of object past end of
        allocation") may not be readable yet, by this open of the file or a fresh one. They are left out, counted
        in `unreadable_live_rows`, and said in `partial_reason`; they are there once the session has ended.
        RecordingError (in words) for a file that is not live and cannot be read."""
        self.unreadable_live_rows = 0
        try:
            self._read_tables(row_by_row=False)
        except _LiveRowsUnreadable:  # a fresh open reads the file's current end, and often the rows this one could not
            self._reopen()
            self._read_tables(row_by_row=True)
        if self.unreadable_live_rows:
            note = (f"{counted(self.unreadable_live_rows, 'newest event, command or plan row')} cannot be read while "
                    "it is being recorded (HDF5 keeps a live file's texts where a reader cannot reach them yet); they "
                    "are there once the session has ended")
            base = self._partial_base
            self.partial_reason = f"{base.rstrip('.')}; {note}." if base else f"{note}."

    def _reopen(self) -> None:
        """Open the file afresh (SWMR, locking off) in place of this handle; a file closed since drops its live note."""
        self._h5.close()  # first: HDF5 shares one open of a file within a process, stale metadata cache and all
        try:
            h5 = self._h5 = _open_unlocked(self.path, swmr=True)
        except HDF5_ERRORS as exc:  # moved, replaced or damaged since: in words (this Recording is closed)
            raise open_error(self.path, exc) from exc
        with reading(self.path):
            self._telemetry = {name: h5[fmt.DEVICES_GROUP][name][fmt.TELEMETRY] for name in self._telemetry}
            self.meta = _read_meta(self.path, h5)
        if self.meta.end_time_utc is not None and bool(h5.attrs.get("closed_cleanly", True)):
            self._partial_base = self.partial_reason = None  # closed by its recorder since it was opened

    def _text_rows(self, name: str, row_by_row: bool) -> np.ndarray:
        """All rows of a text table; of a live file, those that can be read (`refresh`), one by one if `row_by_row`
        (else _LiveRowsUnreadable, for refresh to try a fresh open first)."""
        ds = self._h5[name]
        try:
            return ds[:]
        except OSError:
            if not self._h5.swmr_mode:
                raise
            if not row_by_row:
                raise _LiveRowsUnreadable from None
        rows = []
        for i in range(ds.shape[0]):
            try:
                rows.append(ds[i])
            except OSError:
                self.unreadable_live_rows += 1
        log.info("%s: %d rows of %s not readable while live", self.path.name, ds.shape[0] - len(rows), name)
        return np.array(rows, dtype=ds.dtype)

    def _read_tables(self, row_by_row: bool = True) -> None:
        swmr = self._h5.swmr_mode
        try:
            for name in (fmt.EVENTS, fmt.COMMANDS, fmt.PLAN):
                if swmr:
                    self._h5[name].refresh()
            self._index: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            self._n: dict[str, int] = {}
            self._losses: dict[str, np.ndarray] = {}
            for name, ds in self._telemetry.items():
                g = self._h5[fmt.DEVICES_GROUP][name]
                if swmr:
                    for d in (ds, g[fmt.INDEX], g[fmt.LOSSES]):
                        d.refresh()
                n = _written_rows(ds)
                idx = g[fmt.INDEX][:]
                idx = idx[idx["row"] < n]
                self._index[name] = (idx["row"].astype(np.int64), idx["t_host_s"])
                self._n[name] = n
                self._losses[name] = g[fmt.LOSSES][:]
                if n:
                    ds[n - 1]  # a truncated file fails here rather than in the middle of a replay
                if not swmr:  # so does a damaged chunk index (checksummed metadata): the whole index is walked
                    ds.id.chunk_iter(lambda _chunk: None)
            self.events = sorted((event_row(r) for r in written(self._text_rows(fmt.EVENTS, row_by_row), "kind")),
                                 key=_in_time_order)
            self.commands = [command_row(r) for r in written(self._text_rows(fmt.COMMANDS, row_by_row), "device")]
            self.plans = [plan_row(r) for r in written(self._text_rows(fmt.PLAN, row_by_row), "plan_json")]
            self.undecodable_rows = (sum(UNDECODABLE_KEY in e.details for e in self.events)
                                     + sum(UNDECODABLE_KEY in c.args for c in self.commands)
                                     + sum(isinstance(p, dict) and UNDECODABLE_KEY in p for _t, p in self.plans))
        except HDF5_ERRORS as exc:
            raise damaged_error(self.path, exc, "its events, commands, plans or telemetry index cannot be read") from exc

    # --- what it holds ----------------------------------------------------------------------------------------------
    @property
    def partial(self) -> bool:
        return self.partial_reason is not None

    @property
    def plan(self) -> dict[str, Any] | None:
        """The last session plan written (the one that was followed), or None."""
        return self.plans[-1][1] if self.plans else None

    def samples(self, device: str) -> int:
        return self._n[device]

    def samples_lost(self, device: str) -> int:
        return int(self._losses[device]["samples_lost"].sum())

    def losses(self, device: str) -> np.ndarray:
        return self._losses[device]

    @property
    def duration_s(self) -> float:
        return self.known_duration_s or 0.0  # 0.0 when no host time is finite (then known_duration_s is None)

    @property
    @guarded
    def known_duration_s(self) -> float | None:
        """Session seconds to the last finite host time (NaN, ±inf skipped) of any row; None if none is (unknown)."""
        ends = [float(self._telemetry[d][k - 1]["t_host_s"]) for d, n in self._n.items()
                if (k := _written_rows(self._telemetry[d], n, np.isfinite))]
        ends += [x.t_host_s for x in (*self.events, *self.commands) if np.isfinite(x.t_host_s)]
        return max(0.0, max(ends) - self.meta.t0_host_s) if ends and np.isfinite(self.meta.t0_host_s) else None

    def rows(self, device: str, i0: int, i1: int) -> np.ndarray:
        """Telemetry rows [i0, i1) of a device (clipped to what the file holds)."""
        n = self._n[device]
        i0, i1 = max(0, min(i0, n)), max(0, min(i1, n))
        with reading(self.path, f"the telemetry of {device} cannot be read"):
            return self._telemetry[device][i0:i1] if i1 > i0 else np.empty(0, self.devices[device].dtype)

    def row_at(self, device: str, t_s: float) -> int:
        """Index of the first row of a device at or after session time t_s (the row count if none)."""
        t_abs = self.meta.t0_host_s + t_s
        rows, times = self._index[device]
        n = self._n[device]
        k = int(np.searchsorted(times, t_abs, "left")) - 1
        if k < 0:
            return 0
        lo = int(rows[k])
        hi = int(rows[k + 1]) if k + 1 < len(rows) else n
        with reading(self.path, f"the telemetry of {device} cannot be read"):
            t = self._telemetry[device].fields("t_host_s")[lo:hi]
        return lo + int(np.searchsorted(t, t_abs, "left"))

    def telemetry(self, device: str, t_start_s: float | None = None, t_end_s: float | None = None) -> np.ndarray:
        """Rows of a device with t_start_s <= session time < t_end_s (None: from the start, to the end)."""
        if device not in self.devices:
            raise RecordingError(f"{self.path.name} has no device {quoted(device)} (it has {', '.join(self.devices)}).")
        i0 = 0 if t_start_s is None else self.row_at(device, t_start_s)
        i1 = self._n[device] if t_end_s is None else self.row_at(device, t_end_s)
        return self.rows(device, i0, i1)

    def close(self) -> None:
        """Close the file. A file cut short below HDF5's end of allocation (its writer stopped by a file size limit)
        cannot be closed even by a reader: logged, and its objects kept (unclosable.py), never an error here."""
        try:
            self._h5.close()
        except HDF5_ERRORS as exc:
            log.info("closing %s after reading it: %s", self.path, exc)
            unclosable.keep_forever(self._h5, self._h5.id, *self._telemetry.values(), exc)

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _LiveRowsUnreadable(Exception):
    """A live file's text table cannot be read in one go by this open (Recording.refresh opens it afresh)."""


def _open_unlocked(path: Path, swmr: bool = False) -> h5py.File:
    """Read-only, without HDF5's file lock; within the process that is writing the file HDF5 requires the writer's
    own locking setting, and there no lock can stand between reader and writer anyway."""
    try:
        return h5py.File(path, "r", swmr=swmr, locking=False)
    except OSError as exc:
        if "locking flag values don't match" not in str(exc):
            raise
        return h5py.File(path, "r", swmr=swmr)


def clear_mark_advice(path: Path) -> str:
    """What to do so that h5dump, HDFView or MATLAB open a recording its writer never closed (the "open for writing"
    mark stays in a killed SWMR writer's file): clear the mark on a copy, never on the original (its SHA-256)."""
    copy = path.with_name(path.stem + "-copy" + path.suffix)
    return (f"To open it in h5dump, HDFView or MATLAB, clear the mark on a copy (never on the original): "
            f"cp '{path}' '{copy}' && h5clear -s '{copy}' (h5clear comes with the HDF5 tools, Debian's hdf5-tools).")


def unclosed_reason(path: Path) -> str:
    """Why a recording is still marked open for writing, in words: a program on this computer has it open for
    writing (`mark.held_by_a_process(for_writing=True)`: its session recording it now, most often), or its writer
    stopped before closing it (then how to open it in other tools; programs that only read it, this one included,
    do not count). A file written from another computer (a shared folder) cannot be seen held from here: the
    sentence says so rather than call it crashed."""
    if held_by_a_process(path, for_writing=True):
        return ("the writer did not close it yet: a program on this computer has it open for writing (most often "
                "its session: it is being recorded now), so what it holds is what was written so far; open it again "
                "later for more.")
    return ("the writer did not close it, and no program on this computer has it open for writing: the recording "
            "process stopped (crash, kill, power loss) before closing it, unless another computer is recording it "
            "through a shared folder. " + clear_mark_advice(path))


def in_use_error(path: Path) -> RecordingError | None:
    """The sentence for a file a program holds open for writing (HDF5's exclusive lock, or on Linux any process
    that opened it for writing, with file locking off too), or None when none does: a live Cicatrix session
    (its SWMR mark), its session creating or closing it (its ballast beside it, room.write_ballast), or another
    program. One wording for every command that reads a recording (inspect, audit,
    export, verify, …). Readers holding it do not count: they never block anything."""
    if not (_locked_by_another_program(path) or held_by_a_process(path, for_writing=True)):
        return None
    if swmr_mark(path):
        return RecordingError(f"{path} is open for writing by a program on this computer (most often its session: "
                              "it is being recorded now): what it holds may change until that program closes it. Try "
                              "again once it has.")
    if fmt.ballast_path(path).exists():  # its session's own hold: the instant it is created, or its close
        return RecordingError(f"{path} is being created or closed by its session on this computer at this moment: "
                              "try again in a few seconds. The file is not damaged by this.")
    return RecordingError(
        f"{path} is in use by another program that has it open for writing (not as a live Cicatrix "
        "recording): close it there, then try again. The file is not damaged by this.")


def written_now(path: Path) -> RecordingError | None:
    """`in_use_error` for a file that read as truncated, damaged or not HDF5 (a file being written can look so), where
    a holder can be seen (Linux, macOS); None on Windows, where no holder can be seen and such a file is taken as
    what it looks like."""
    return None if sys.platform == "win32" else in_use_error(path)


def refuse_if_written_elsewhere(path: Path | str) -> None:
    """Raise in_use_error's sentence when a program other than a live Cicatrix session has `path` open for writing
    (its bytes may change under the reader, HDF5 lock or not): the same refusal as `verify`, for every command that
    reads a closed recording whole (inspect, export, audit, report). A live session's file (SWMR) is read as it is."""
    path = Path(path)
    if path.is_file() and not swmr_mark(path) and (error := in_use_error(path)) is not None:
        raise error


def _locked_by_another_program(path: Path) -> bool:
    """Whether another process holds HDF5's exclusive lock on the file (a writer that is not SWMR)."""
    if sys.platform == "win32":
        return True  # no way to probe: the wording "in use" is the likelier truth there
    import fcntl

    try:
        with open(path, "rb") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    except OSError:
        return False
    return False


def _in_time_order(e: Any) -> tuple[bool, float]:
    """`events`' sort key: by host time; an event at no time (not finite) after all the others (NaN cannot sort)."""
    finite = math.isfinite(e.t_host_s)
    return (not finite, e.t_host_s if finite else 0.0)


def _written_rows(ds: h5py.Dataset, n: int | None = None, keep: Any = lambda t: t != 0.0) -> int:
    """Telemetry rows up to the last one written: trailing rows at host time 0 were allocated, never written. With
    `n` and `keep` (np.isfinite): rows up to the last of the first `n` whose `t_host_s` passes `keep`, 0 if none."""
    n, step = ds.shape[0] if n is None else n, 256
    while n > 0:
        t = ds.fields("t_host_s")[max(0, n - step):n]
        nonzero = np.flatnonzero(keep(t))
        if len(nonzero):
            return max(0, n - step) + int(nonzero[-1]) + 1
        n -= step
        step *= 4
    return 0


def _attr(path: Path, attrs: h5py.AttributeManager, name: str) -> Any:
    if name not in attrs:
        raise damaged_error(path, None, f"its root attribute {quoted(name)} is missing")
    return attrs[name]


def _read_meta(path: Path, h5: h5py.File) -> RecordingMeta:
    """The root's attributes. Listing them reads them all (h5py raises on a damaged one: the caller's `reading`);
    a root with a wrong or no format marker but other attributes of a recording is damaged, not foreign."""
    a = h5.attrs
    names = set(a.keys())
    if (text(a["format"]) if "format" in names else "") != fmt.FORMAT_NAME:
        if len(names & set(fmt.ROOT_ATTRS)) >= 3:
            raise damaged_error(path, None, f"its root attribute {quoted('format')} is not {quoted(fmt.FORMAT_NAME)}")
        raise NotARecording(f"{path.name} is an HDF5 file but not a Cicatrix session recording (its root has no "
                            f"attribute format = {quoted(fmt.FORMAT_NAME)}).")
    version = int(_attr(path, a, "format_version"))
    if version > fmt.FORMAT_VERSION:
        raise RecordingError(
            f"{path.name} uses recording format {version}, newer than format {fmt.FORMAT_VERSION} that this "
            "software reads. Update the workstation software to open it."
        )
    for name in (fmt.DEVICES_GROUP, fmt.EVENTS, fmt.COMMANDS, fmt.PLAN):
        if name not in h5:
            raise damaged_error(path, None, f"it has no {quoted(name)} in its root")
    s = {k: shown(_attr(path, a, k)) for k in fmt.ROOT_ATTRS if k not in ("format", "format_version", "t0_host_s")}
    end = a.get("end_time_utc")
    return RecordingMeta(format_version=version, t0_host_s=float(_attr(path, a, "t0_host_s")),
                         end_time_utc=None if end is None else shown(end), **s)


def _read_device(name: str, g: h5py.Group) -> DeviceInfo:
    a = g.attrs
    ds = g[fmt.TELEMETRY]
    fields = ds.dtype.names or ()
    return DeviceInfo(
        name=name, driver_name=shown(a["driver_name"]), driver_kind=shown(a["driver_kind"]),
        driver_version=shown(a["driver_version"]), model=shown(a["model"]), serial_number=shown(a["serial_number"]),
        firmware=shown(a["firmware"]), nominal_rate_hz=float(a["nominal_rate_hz"]),
        units={f: shown(ds.attrs[f + fmt.UNIT_SUFFIX]) for f in fields},
        descriptions={f: shown(ds.attrs.get(f + fmt.DESCRIPTION_SUFFIX, "")) for f in fields},
        identity=json_value(a["identity_json"]), calibration=json_value(a["calibration_json"]),
        dtype=ds.dtype,
    )
