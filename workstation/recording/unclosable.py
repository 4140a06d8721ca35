"""Recordings HDF5 could not close: their h5py objects are kept for the life of the process, which then leaves
without HDF5's own shutdown (a full disk: freeing an object of a file whose close failed makes the library crash)."""

from __future__ import annotations

import ctypes
import logging
import os
import sys

_KEPT: list[object] = []


def keep_forever(*objects: object) -> None:
    """Never free these h5py objects (nor what their tracebacks hold), not even at exit: freeing an object of a file
    HDF5 failed to close makes the library crash. A few kB leaked once per failed recording is the lesser harm."""
    for o in objects:
        _KEPT.append(o)
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(o))


def exit_if_a_file_is_unclosable(code: int) -> None:
    """End the process now with `code` if a recording could not be closed (`keep_forever`): HDF5 would crash
    while shutting down with that file still open. Output is flushed first. Called by workstation.cli.entry at exit."""
    if _KEPT:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def freeing_error(tb: object) -> bool:
    """Whether a traceback is h5py failing to free an object (its `_dealloc`: "Can't decrement id ref count" after a
    full disk refused a close). Cython reports those through sys.excepthook and then sys.unraisablehook; the program
    logs them (workstation.logsetup, the window's hook) and never shows them as a traceback or an error."""
    while tb is not None:
        code = tb.tb_frame.f_code  # type: ignore[attr-defined]
        if code.co_name.endswith("_dealloc") and code.co_filename.endswith("_objects.pyx"):  # Cython: qualified
            return True
        tb = tb.tb_next  # type: ignore[attr-defined]
    return False


def not_started(h5, path, exc: BaseException):
    """The RecordingNotStarted for a new recording whose first metadata the disk refused (`SessionRecorder.start`):
    its objects are never freed (a crash at exit otherwise: a fresh tester of issue 12 saw SIGSEGV), and the file,
    which holds no session yet, is removed with its reserve, so no damaged file is left behind."""
    from workstation.recording import format as fmt
    from workstation.recording.errors import RecordingNotStarted, in_words

    keep_forever(h5, h5.id, exc)
    for left in (path, fmt.ballast_path(path)):
        left.unlink(missing_ok=True)
    return RecordingNotStarted(f"The recording {path} could not be started{in_words(exc)}, so the session did not "
                               "start and nothing was given; its file is removed. Free some space, then start the "
                               "session again.")
