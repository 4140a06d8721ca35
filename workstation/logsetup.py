"""The program's log: one rotating file in the platform's log folder (workstation.places.log_dir) with every command
line, session event (state changes, interlock trips, faults, alarms), device command and error; the window's
messages go there too. Python's faulthandler writes a hard crash (segfault, abort, fatal error) of any thread into
crash.log in the same folder, so a crash that kills the interpreter still leaves a trace.

Writing is done by a listener thread (logging.handlers.QueueListener): a device reader thread that logs an event only
puts it on a queue and never waits on the disk. Patients appear in the log by pseudonym only; identifying fields are
never logged."""

from __future__ import annotations

import atexit
import contextlib
import errno
import faulthandler
import logging
import logging.handlers
import queue
import sys
import threading
from pathlib import Path
from typing import IO

from workstation.places import CRASH_FILE_NAME, LOG_FILE_NAME, log_dir

LOG_MAX_BYTES = 5 * 2**20  # five files of 5 MB: months of sessions, small enough to attach to a report
LOG_BACKUPS = 4
FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"
EVENTS_LOGGER = "workstation.events"  # the bus's events and commands; already shown to the user by window/printer

log = logging.getLogger(__name__)


class _State:
    listener: logging.handlers.QueueListener | None = None
    handlers: list[logging.Handler] = []
    crash_file: IO[str] | None = None
    log_file: Path | None = None


def stop_logging() -> None:
    """Write what is queued, close the log and crash files, remove the handlers (at exit, or between tests)."""
    root = logging.getLogger()
    for h in _State.handlers:
        root.removeHandler(h)
    _State.handlers = []
    if _State.listener is not None:
        _State.listener.stop()  # writes what is still queued
        for h in _State.listener.handlers:
            with contextlib.suppress(OSError):  # a log on a full disk: what could not be written is lost, quietly
                h.close()
        _State.listener = None
    if _State.crash_file is not None:
        faulthandler.disable()
        with contextlib.suppress(OSError):
            _State.crash_file.close()
        if sys.__stderr__ is not None:  # back to Python's usual place for a fatal error's trace
            faulthandler.enable(file=sys.__stderr__, all_threads=True)
        _State.crash_file = None
    _State.log_file = None


atexit.register(stop_logging)


SHOWN = {"shown": True}  # `extra=SHOWN`: the user already sees this text (stderr, window); keep it out of stderr


class _NotShown(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith(EVENTS_LOGGER) or getattr(record, "shown", False))


def configure_logging(folder: Path | None = None, *, verbose: bool = False, command: str = "") -> Path | None:
    """Send log records at INFO and above to `folder`/cicatrix.log (default: the platform's log folder), rotating at
    LOG_MAX_BYTES with LOG_BACKUPS old files; to stderr only with `verbose` (everything) or when the folder cannot be written
    (warnings), since the user reads sentences, not logger lines; enable faulthandler
    into `folder`/crash.log after a header line naming the time, pid and `command` (crash.log is rotated to
    crash.log.1 at start once above CRASH_MAX_BYTES), and note in the log when crash.log holds a crash trace written
    since the previous start; log uncaught exceptions of any thread. Calling it again replaces the previous set-up.
    Returns the log file, or None when the folder cannot be written (then a sentence goes to stderr and only stderr
    logging is set up: the program still works)."""
    stop_logging()
    # A log that cannot be written (its disk full) loses those lines quietly, as logging's documentation advises for
    # production, instead of printing "--- Logging error ---" and a trace on the user's terminal.
    logging.raiseExceptions = False
    folder = Path(folder) if folder is not None else log_dir()
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.DEBUG if verbose else logging.WARNING)
    err.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    err.addFilter(_NotShown())
    handlers: list[logging.Handler] = []
    path: Path | None = folder / LOG_FILE_NAME
    earlier_crash = ""
    try:
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(20, "it is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS,
                                                            encoding="utf-8")
        earlier_crash = _open_crash_file(folder / CRASH_FILE_NAME, command)
    except OSError as exc:
        why = "its disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or "refused").lower()
        print(f"warning: the log folder {folder} cannot be written ({why}); nothing is logged to a file.",
              file=sys.stderr)
        path = None
    else:
        file_handler.setFormatter(logging.Formatter(FORMAT))
        q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        _State.listener = logging.handlers.QueueListener(q, file_handler, respect_handler_level=True)
        _State.listener.start()
        handlers.append(logging.handlers.QueueHandler(q))
        faulthandler.enable(file=_State.crash_file, all_threads=True)
    if verbose or path is None:  # else the terminal gets sentences (print, UserError), never raw logger lines
        handlers.insert(0, err)
    for h in handlers:
        root.addHandler(h)
    _State.handlers = handlers
    _State.log_file = path
    if path is not None and earlier_crash:
        log.warning("a hard crash was recorded since the last start: %s holds its trace (%s)",
                    folder / CRASH_FILE_NAME, earlier_crash)
    threading.excepthook = _thread_excepthook
    sys.unraisablehook = _unraisable_hook
    if not getattr(sys.excepthook, "logs_freeing_errors", False):
        sys.excepthook = _logging_freeing_errors(sys.excepthook)
    return path


CRASH_MAX_BYTES = 256 * 2**10  # a few dozen thread dumps; the older ones move to crash.log.1 (one kept)
CRASH_HEADER = "=== cicatrix started "  # each process's header line in crash.log; a trace follows only after a crash
_CRASH_SEEN = ".crash.log.seen"  # the size of crash.log before the last start's header (to notice a crash since)


def _open_crash_file(path: Path, command: str) -> str:
    """Open crash.log for faulthandler (kept in _State.crash_file), rotating it first if too large, and write this
    process's header. Returns a short description of a crash trace written since the previous start, or ""."""
    import datetime
    import os

    from workstation.terminal import one_line

    seen_file = path.parent / _CRASH_SEEN
    try:
        seen = int(seen_file.read_text(encoding="ascii").strip() or 0)
    except (OSError, ValueError):
        seen = 0
    earlier = ""
    try:
        with path.open("rb") as f:
            size = path.stat().st_size
            f.seek(seen if seen <= size else 0)  # smaller than last time: rotated or emptied since, read it all
            since = f.read(CRASH_MAX_BYTES).decode("utf-8", "replace")
        run = ""  # the header of the run the first trace belongs to
        for line in since.splitlines():
            if line.startswith(CRASH_HEADER):
                run = line[len(CRASH_HEADER):].strip()
            elif line.strip():
                earlier = line.strip() + (f" (in the run started {run})" if run else "")
                break
        if path.stat().st_size > CRASH_MAX_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass
    _State.crash_file = open(path, "a", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115 - kept open
    before_header = os.fstat(_State.crash_file.fileno()).st_size  # the next start reads from here: header and all
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    _State.crash_file.write(f"{CRASH_HEADER}{now} pid {os.getpid()}: {one_line(command or ' '.join(sys.argv))}\n")
    _State.crash_file.flush()
    try:
        seen_file.write_text(str(before_header), encoding="ascii")
    except OSError:
        pass
    return earlier


def current_log_file() -> Path | None:
    """The file this process logs to (None before configure_logging, or when the folder could not be written)."""
    return _State.log_file


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    log.error("thread %s ended by an uncaught exception", name,
              exc_info=(args.exc_type, args.exc_value, args.exc_traceback))  # type: ignore[arg-type]


def _unraisable_hook(unraisable: sys.UnraisableHookArgs) -> None:
    """An error Python cannot raise (h5py freeing an object of a file a full disk left unclosable: "Can't decrement
    id ref count"): to the log file, never to the terminal as a traceback (a fresh tester of issue 12)."""
    log.warning("an error while freeing %r (ignored): %s", unraisable.object, unraisable.exc_value,
                exc_info=(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback))  # type: ignore[arg-type]


def _logging_freeing_errors(hook):
    """`hook`, but an error h5py met while freeing an object (Cython prints it through sys.excepthook before it reaches
    sys.unraisablehook: recording/unclosable.freeing_error) goes to the log file only."""
    from workstation.recording.unclosable import freeing_error

    def excepthook(exc_type, exc, tb) -> None:
        if freeing_error(tb):
            log.warning("an error while freeing an h5py object (ignored): %s", exc, exc_info=(exc_type, exc, tb))
            return
        hook(exc_type, exc, tb)

    excepthook.logs_freeing_errors = True  # type: ignore[attr-defined]
    return excepthook

