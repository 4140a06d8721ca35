"""The session recorder: a bus sink that writes a session to one HDF5 file from its own thread.

Callers (device reader threads, which also run the safety monitor) only append to an in-memory inbox. The writer
thread appends every `flush_interval_s` (at most 250 ms, on a fixed cadence) everything queued as one slab per
dataset and flushes, so a reader can follow the file live and a killed process loses at most the last interval; an
fsync is asked after each flush and run on a thread of its own (recording/syncer.py), so a slow disk delays the
durability against a power cut, never the appends. After `start()` only the writer thread touches the open file's
HDF5 objects, including its last close.
"""

from __future__ import annotations

import errno
import logging
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from drivers.types import DriverInfo, Identity
from workstation.bus import CommandRecord, Event, now_s
from workstation.checksum import write_checksum
from workstation.errors import UserError
from workstation.recording import format as fmt
from workstation.recording import room, unclosable
from workstation.recording.admit import command_in, event_in
from workstation.recording.clean import clean_text, json_with_notes
from workstation.recording.damaged import HDF5_ERRORS
from workstation.recording.errors import (
    RecordingError,
    below_reserve_words,
    disk_full,
    full_words,
    held_mark_words,
    in_words,
    stayed_full_words,
)
from workstation.recording.inbox import Inbox
from workstation.recording.late import LateItems, write_late
from workstation.recording.mark import clear_own_mark, remove_stale_ballasts, still_marked
from workstation.recording.reopen import HeldForWriting, open_for_closing
from workstation.recording.signature import sign
from workstation.recording.slabs import RECORDER_SOURCE, RecorderStats, SlabWriter, write_root
from workstation.recording.syncer import Syncer
from workstation.recording.unwritten import Refused, count_unwritten, counts, keep_unwritten
from workstation.terminal import quoted

log = logging.getLogger(__name__)

_PSEUDONYM = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_DEVICE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
ONE_HOUR_BOTH_DEVICES_BYTES = 600 * 2**20  # 2 devices x 2 kHz x ~40 B x 3600 s
CLOSING_MIN_FREE_BYTES = 2**20  # the closing attributes take a few kB; below this the file is left as it is
BALLAST_BYTES = 8 * 2**20  # disk space held back at creation and given back for the close after a full disk
UNCLOSED_WORDS = ("{why}, so the file could not take its closing attributes: what the session did after the failure "
                  "(its E-stop and trips), and what it did just before it that the failed write had not taken yet, is "
                  "in the log file, not in the recording")  # the latter: a fresh tester of issue 12 ("step 1 started")
CLOSE_ROOM_BYTES = 2**20  # held past the file's end at each flush (room.hold): what the close writes finds room


@dataclass(frozen=True, slots=True)
class SessionMeta:
    """Who and what a recording is about. The patient is a pseudonymous id, never a name."""

    session_uuid: str
    mode: str  # "clinical" or "simulation"
    patient_pseudonym: str
    operator_id: str
    protocol_id: str
    protocol_version: str
    software_version: str

    def check(self) -> None:
        try:
            uuid.UUID(self.session_uuid)
        except ValueError:
            raise RecordingError(f"The session id {quoted(self.session_uuid)} is not a UUID.") from None
        if self.mode not in fmt.MODES:
            raise RecordingError(f"The session mode must be one of {', '.join(fmt.MODES)}, not {quoted(self.mode)}.")
        if not _PSEUDONYM.match(self.patient_pseudonym):
            raise RecordingError(f"The patient id {quoted(self.patient_pseudonym)} is not a pseudonymous id (letters, "
                                 "digits and . _ : - only, no spaces): recordings never hold a patient's name.")


class SessionRecorder:
    """Create with `SessionRecorder.create`, `add_device` for each device, `start`, subscribe to the bus, `close`."""

    def __init__(
        self, path: Path, h5: h5py.File, *,
        on_alarm: Callable[[Event], None] | None,
        on_error: Callable[[RecordingError], None] | None,
        on_flush: Callable[[dict[str, int]], None] | None,
        flush_interval_s: float,
        queue_alarm_rows: int,
        queue_ceiling_bytes: int,
        reserve_bytes: int,
    ) -> None:
        self.path = path
        self._h5 = h5
        # session time 0 (monotonic host s): the one origin of the plots, the trainer's log, the report and replay
        self.t0_host_s = float(h5.attrs["t0_host_s"])
        self._on_alarm = on_alarm
        self._on_error = on_error
        self._on_flush = on_flush
        self.flush_interval_s = flush_interval_s
        self._reserve_bytes = reserve_bytes
        self._inbox = Inbox(queue_alarm_rows, queue_ceiling_bytes)
        self._late = LateItems()  # published during the close: written by its reopen (late.py)
        # blocks a failed write did not take, and those sent after it: counted by the closing reopen (unwritten.py)
        self._not_written, self._refused = Refused(), Refused()
        self.stats = RecorderStats()
        self._slabs = SlabWriter(h5, self.stats)
        self.error: RecordingError | None = None
        self._alarm_raised = False
        self._loss_alarm_raised = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._syncer: Syncer | None = None
        self._sha256: str | None = None
        self.checksum_failure: str | None = None  # why no .sha256 was written beside the file (after a failure)
        self.signature_failure: str | None = None  # why no .sig was written beside it, in words
        self.unclosed: str | None = None  # why the file has no closing attributes after a failure, in words
        self._room_held = False  # CLOSE_ROOM_BYTES held past the file's end at the last flush
        self._finished = False
        self._file_damaged = False
        self.disk_full = False

    # --- creation -------------------------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        directory: str | Path,
        meta: SessionMeta,
        *,
        on_alarm: Callable[[Event], None] | None = None,
        on_error: Callable[[RecordingError], None] | None = None,
        on_flush: Callable[[dict[str, int]], None] | None = None,
        flush_interval_s: float = 0.2,
        queue_alarm_rows: int = 40_000,  # 10 s of both devices at 2 kHz
        queue_ceiling_bytes: int = 256 * 2**20,
        min_free_bytes: int = ONE_HOUR_BOTH_DEVICES_BYTES,
        reserve_bytes: int = 50 * 2**20,
        ballast_bytes: int = BALLAST_BYTES,
        t0_host_s: float | None = None,
    ) -> SessionRecorder:
        """Open `directory/YYYY-MM-DD/<uuid>.h5` for a new session; RecordingError if that cannot be done safely."""
        meta.check()
        if not 0 < flush_interval_s <= 0.25:
            raise ValueError("flush_interval_s must be in (0, 0.25] s: a crash may lose at most 250 ms")
        start_utc = fmt.utc_now_iso()
        path = fmt.recording_path(Path(directory), meta.session_uuid, fmt.dt.date.fromisoformat(start_utc[:10]))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordingError(f"Cannot create the recordings folder {path.parent}: {exc.strerror or exc}.") from exc
        free = shutil.disk_usage(path.parent).free
        if free < min_free_bytes:
            raise RecordingError(f"Only {free / 2**20:.0f} MB are free on the disk holding {path.parent}; a session "
                                 f"needs at least {min_free_bytes / 2**20:.0f} MB. Free some space or choose another "
                                 "recordings folder.")
        if (small := room.too_small_a_limit(path.parent, min_free_bytes)) is not None:  # ulimit -f, FAT32
            raise RecordingError(small)
        if path.exists():
            raise RecordingError(f"The recording {path} already exists; a session never overwrites a recording.")
        ballast = fmt.ballast_path(path)
        try:
            room.write_ballast(ballast, ballast_bytes)
        except OSError as exc:
            raise RecordingError(f"Cannot create the recording {path}: {exc.strerror or exc}. Check the folder is "
                                 "writable and has free space.") from exc
        try:
            h5 = h5py.File(path, "w-", libver=fmt.LIBVER)
        except OSError as exc:
            ballast.unlink(missing_ok=True)
            log.info("creating the recording %s: %s", path, exc)
            raise RecordingError(f"Cannot create the recording {path}{in_words(exc)}. Check the folder is writable "
                                 "and has free space.") from exc
        try:
            write_root(h5, {
                "session_uuid": meta.session_uuid, "start_time_utc": start_utc,
                "t0_host_s": now_s() if t0_host_s is None else t0_host_s,  # session time 0 on the monotonic clock
                "software_version": meta.software_version, "mode": meta.mode,
                "patient_pseudonym": meta.patient_pseudonym, "operator_id": meta.operator_id,
                "protocol_id": meta.protocol_id, "protocol_version": meta.protocol_version,
            })
        except Exception:
            h5.close()
            path.unlink(missing_ok=True)
            ballast.unlink(missing_ok=True)
            raise
        rec = cls(
            path, h5, on_alarm=on_alarm, on_error=on_error, on_flush=on_flush, flush_interval_s=flush_interval_s,
            queue_alarm_rows=queue_alarm_rows, queue_ceiling_bytes=queue_ceiling_bytes, reserve_bytes=reserve_bytes,
        )
        for said in remove_stale_ballasts(Path(directory)):  # a killed recorder's, with no store to recover it
            rec._alarm("info", said, kind="recording")  # on the bus (the runner prints it) and in this recording
        return rec

    def add_device(
        self, name: str, driver_info: DriverInfo, identity: Identity, block_dtype: np.dtype, calibration: dict[str, Any]
    ) -> None:
        """Declare a device before `start`: under SWMR no dataset can be added later."""
        if self._thread is not None:
            raise RuntimeError("add_device must be called before start()")
        if not _DEVICE_NAME.match(name) or name in self._slabs.dtypes:
            raise ValueError(f"device name {name!r} is not a new lower-case identifier")
        self._slabs.add_device(name, driver_info, identity, block_dtype, calibration)

    def start(self) -> None:
        """Switch the file to SWMR and start the writer thread."""
        if self._thread is not None:
            return
        try:  # the file's first metadata: a disk that filled since `create` refuses it (a fresh tester of issue 12)
            self._h5.flush()
            self._h5.swmr_mode = True
        except HDF5_ERRORS as exc:
            raise unclosable.not_started(self._h5, self.path, exc) from exc
        self._syncer = Syncer(self._h5.id.get_vfd_handle(), self.stats)
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    @property
    def refused_after_close(self) -> int:
        """Items published after the writer's last take that are not in the file (not kept for the reopen)."""
        return self._inbox.refused_after_close - self._late.written

    @property
    def takes_more(self) -> bool:
        """An event or command published now still reaches the file (False once past the closing reopen: late.py)."""
        return not self._late.sealed

    @property
    def queued_samples(self) -> int:
        """Samples waiting for the writer thread."""
        return self._inbox.rows

    # --- the sink: called in publishers' threads, never waits on the disk ----------------------------------------
    def on_block(self, device: str, block: np.ndarray) -> None:
        if len(block) == 0:
            return
        state = "closed" if self.error is not None else self._inbox.put_block(device, block.copy())
        if state == "closed":  # after a write failure (or the last take): counted by the reopen (unwritten.py)
            self._refused.add(device, block)
        elif state == "kept":
            if self._alarm_raised and self._inbox.rows < self._inbox.alarm_rows // 2:
                self._alarm_raised = self._loss_alarm_raised = False
        elif state == "alarm" and not self._alarm_raised:
            self._alarm_raised = True
            self._alarm("high", f"The recorder is falling behind: {self._inbox.rows} samples are waiting to be "
                        "written. They are kept in memory; stop the session if this persists.",
                        queued_samples=self._inbox.rows)
        elif state == "lost" and not self._loss_alarm_raised:
            self._loss_alarm_raised = True
            self._alarm("high", f"The recorder's memory ceiling is reached: samples of {device} are being lost "
                        "(their count is kept in the recording). Stop the session.", device=device)

    def on_event(self, event: Event) -> None:
        # after a write failure too: kept for the closing reopen (the session's trips that follow belong in the file)
        if event.source != RECORDER_SOURCE:
            self._put(("event", event_in(event)))  # a row the file could not take as given gets a note (admit.py)

    def on_command(self, record: CommandRecord) -> None:
        self._put(("command", command_in(record)))

    def _put(self, item: tuple[Any, ...]) -> None:  # after the writer's last take: kept for the closing reopen
        if not self._inbox.put(item):
            self._late.add(item)

    def write_plan(self, plan: dict[str, Any]) -> None:
        """Record the session plan the protocol engine computed, with its reasons (any JSON-able dict; strict JSON
        is written: a non-finite number becomes null, named under `non_finite`)."""
        self._inbox.put(("plan", now_s(), json_with_notes(plan)))

    def _alarm(self, severity: str, message: str, *, kind: str = "alarm", **details: Any) -> Event:
        event = Event(now_s(), kind, severity, RECORDER_SOURCE, message, details)
        self._put(("event", event))
        if self._on_alarm is not None:
            self._on_alarm(event)
        return event

    # --- the writer thread: the only thread that touches the open file after start() ---------------------------
    def _run(self) -> None:
        cpu0 = time.thread_time()
        interval = self.flush_interval_s
        deadline = time.monotonic() + interval
        last_append = None
        while True:
            # a fixed cadence: the time spent writing comes out of the wait, so appends stay `interval` apart
            stopping = self._stop.wait(max(0.0, deadline - time.monotonic()))
            started = time.monotonic()
            deadline = max(deadline + interval, started)
            if last_append is not None:
                self.stats.max_append_interval_s = max(self.stats.max_append_interval_s, started - last_append)
            last_append = started
            taken = None
            before = counts(self.stats)
            try:
                taken = self._inbox.take_all(close=stopping)
                self._slabs.write(taken)
                self._h5.flush()
                self._syncer.ask()  # raises an earlier fsync's failure
                self._hold_room()
                self.stats.flushes += 1
                if self._on_flush is not None:
                    self._on_flush(dict(self.stats.rows_written))
                if not stopping:
                    # free space at every flush (a statvfs, ~6 µs): once a second, the light ran on unrecorded 0.9 s
                    self._check_space()
                if stopping:
                    self._syncer.stop()
                    self._syncer.sync_now()  # the last flush on the disk before the close
                    self._h5.close()
            except Exception as exc:  # noqa: BLE001 - any failure to write is reported, then the writer stops
                if taken is not None:  # what the failed write did not put in the file: counted or kept
                    keep_unwritten(taken, before, self.stats, self._not_written, self._late)
                self._fail(exc)
                return
            finally:
                self.stats.writer_cpu_s = time.thread_time() - cpu0
                self.stats.max_queue_items = self._inbox.max_depth_items
                self.stats.max_queue_rows = self._inbox.max_depth_rows
            if stopping:
                return

    def _hold_room(self) -> None:
        """Hold CLOSE_ROOM_BYTES past the file's end (room.hold); none left, it stops: the last flush's room closes."""
        t = time.perf_counter()
        try:
            self._room_held = room.hold(self._h5.id.get_vfd_handle(), CLOSE_ROOM_BYTES)
        except OSError as exc:
            raise room.BelowReserve(exc.errno, full_words(self.path, self._reserve_bytes)) from exc
        finally:
            self.stats.note_room_hold(time.perf_counter() - t)

    def _check_space(self) -> None:
        room.check_growth(self._h5.id.get_vfd_handle(), self.path)  # the file's own size limit: no free space shows it
        free = shutil.disk_usage(self.path.parent).free
        if free < (reserve := self._reserve_bytes):
            raise room.BelowReserve(errno.ENOSPC, below_reserve_words(self.path, free, reserve))

    def _fail(self, exc: BaseException) -> None:
        """Stop recording for good: refuse what comes next, release the file (on this thread), tell the session."""
        # what the failed write had not taken yet: counted, or kept for the closing reopen
        keep_unwritten(self._inbox.take_all(close=True), counts(self.stats), self.stats, self._not_written, self._late)
        full = disk_full(exc)
        if isinstance(exc, room.BelowReserve):  # stopped while the file can (most often) still be closed whole
            msg = str(exc.strerror)
        elif full:  # in the reserve's words when the disk is (nearly) full: one sentence whichever check saw it
            msg = full_words(self.path, self._reserve_bytes)
        else:
            msg = (f"Writing the recording {self.path} failed{in_words(exc)}: recording stopped. The session must "
                   "stop; the log file has the details.")
        error = RecordingError(msg)
        error.__cause__ = exc
        self.disk_full = full
        self.error = error
        log.error("%s", msg, extra={"shown": True})  # the session shows it; the library's text goes to the log only
        log.info("the recorder's write failure: %s", exc, exc_info=exc)
        # HDF5 cannot close a file whose metadata it cannot write, and h5py then crashes (SIGSEGV) when it frees its
        # objects. The room held takes the close if the recorder stopped first; if HDF5's write failed, the ballast's.
        if not (self._room_held and isinstance(exc, room.BelowReserve)):
            room.empty_ballast(fmt.ballast_path(self.path))
        if self._syncer is not None:  # no fsync of this file once it is closed
            self._syncer.stop()
        try:
            self._h5.close()
        except Exception as close_exc:  # noqa: BLE001 - the file is already failing; its first error is reported
            self._file_damaged = True
            log.info("closing the failed recording %s raised too: %s", self.path, close_exc)
            unclosable.keep_forever(self._h5, self._h5.id, *self._slabs.datasets(), exc, close_exc)
        if self._on_error is not None:
            self._on_error(error)

    # --- closing --------------------------------------------------------------------------------------------------
    def close(self, timeout_s: float = 10.0) -> str | None:
        """Write everything published so far, close the file, add the closing attributes, return its SHA-256.

        Whatever was published before the writer's last take is written; events and commands published later, until
        the closing reopen, by that reopen (late.py); only what comes after is refused. After a write failure the file
        is left as it is; its checksum is written if the disk allows (atomically), else None is returned.
        RecordingError if the writer does not finish or the closing attributes cannot be added."""
        if self._finished:
            return self._sha256
        if self._thread is None and self.error is None:
            self.start()  # never started: what was queued is still written
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise RecordingError(f"The recorder did not finish writing {self.path} within {timeout_s:.0f} s.")
        self._inbox.take_all(close=True)
        self._finished = True
        # The ballast stays to the end (this session's own hold), then is the checksum file, written over in place; the
        # closing reopen writes into the room the file held (or, where it held none, into the ballast's).
        ballast = fmt.ballast_path(self.path)
        if not self._room_held:
            room.empty_ballast(ballast)
        try:
            return self._close_file(ballast)
        finally:
            ballast.unlink(missing_ok=True)
            self._late.seal_for_good(self.path)  # a close that raised: nothing more reaches the file either

    def _close_file(self, ballast: Path) -> str | None:
        # Never reopened damaged or with no room (an `r+` open that cannot close leaves the "open for writing" mark);
        # after a full disk, only into room the file holds: a filler can take the ballast's mid-reopen (then damaged).
        if not self._file_damaged and (self._room_held or not self.disk_full and shutil.disk_usage(
                self.path.parent).free >= CLOSING_MIN_FREE_BYTES):
            try:
                self._write_closing_attrs()  # into the room held past the file's end, if the disk has no other
            except RecordingError as exc:  # refused by the disk after a failure: said, and the checksum still written
                if self.error is None or isinstance(exc, HeldForWriting):
                    raise
                self.unclosed = UNCLOSED_WORDS.format(why=self._unclosed_why())
        elif self.error is not None:
            log.warning("%s left without its closing attributes (it reads as partial): %s", self.path, self.error)
            self.unclosed = UNCLOSED_WORDS.format(why=self._unclosed_why())
        self._late.seal_for_good(self.path)  # the checksum and signature take time: what comes now is not in the file
        room.give_back(self.path)  # only now: the checksum and signature files may need it
        clear_own_mark(self.path)  # the mark a failed close left, if any (never raises)
        if still_marked(self.path):  # another program holds the file: no checksum of marked bytes (still_marked)
            self.checksum_failure = held_mark_words(self.path)
            return None
        try:
            self._sha256 = write_checksum(self.path, fmt.checksum_path(self.path), room=ballast)
        except OSError as exc:
            if self.error is None:
                raise RecordingError(f"Writing the checksum of {self.path} failed{in_words(exc)}.") from exc
            log.info("no checksum written beside the failed recording %s: %s", self.path, exc)
            self.checksum_failure = f"no checksum could be written beside the file{in_words(exc) or ' (details in the log)'}"
        if self._sha256 is not None:
            try:
                sign(self.path, self._sha256)
            except (OSError, UserError) as exc:  # the recording and its checksum stand; it reads as "not signed"
                log.warning("the recording %s was not signed: %s", self.path, exc)
                self.signature_failure = (f"no signature could be written beside the file{in_words(exc)}"
                                          if isinstance(exc, OSError) else str(exc))
        return self._sha256

    def _unclosed_why(self) -> str:
        return stayed_full_words(self.path) if self.disk_full else "the failed file could not be reopened"

    def _write_closing_attrs(self) -> None:
        h5 = None
        try:
            h5 = open_for_closing(self.path)
            with h5:
                if self.error is not None:  # what the failure left out of the file, said in it (unwritten.py)
                    try:
                        for event in count_unwritten(h5, self._slabs, self._not_written.take(), self._refused.take()):
                            self._late.add(("event", event))
                    except Exception as exc:  # noqa: BLE001 - the closing attributes matter more (as in late.py)
                        log.warning("the losses of the failed recording %s could not be counted in it: %s", self.path,
                                    exc)
                write_late(h5, self._late, self.stats)
                h5.attrs["end_time_utc"] = fmt.utc_now_iso()
                h5.attrs["closed_cleanly"] = self.error is None
                h5.attrs["close_note"] = "" if self.error is None else clean_text(str(self.error))[0]
                h5.attrs["closed_on_full_disk"] = bool(self.error is not None and self.disk_full)
                for name in self._slabs.dtypes:
                    g = h5[fmt.DEVICES_GROUP][name]
                    g.attrs["samples"] = self.stats.rows_written[name]
                    g.attrs["samples_lost"] = self.stats.samples_lost[name]
        except HeldForWriting:  # its own words: another program has it (and the mark is that program's)
            raise
        except Exception as exc:  # noqa: BLE001
            log.info("adding the closing attributes to %s: %s", self.path, exc)
            if h5 is not None:  # a close HDF5 could not finish: its objects are never freed (a crash at exit if so)
                unclosable.keep_forever(h5, h5.id, exc)
            clear_own_mark(self.path)  # a close the full disk refused must not leave the file unreadable
            raise RecordingError(f"Closing the recording {self.path} failed{in_words(exc)}: it reads as partial. "
                                 "The log file has the details.") from exc
