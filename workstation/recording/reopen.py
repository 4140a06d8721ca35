"""The recorder's one reopen of its closed file (`r+`, without SWMR), to add the closing attributes.

Another program may hold the file when the session ends:

- a reader (HDFView, h5dump, an older reader of ours) holds HDF5's shared lock; it only reads, so the reopen then
  proceeds without the lock rather than leave the recording unclosed;
- a program that opened it for writing (`r+`, `a`: forbidden on a live recording, docs/recording-format.md, yet
  possible in the instant between the writer's close and this reopen; the tenth session's fresh tester did it) holds
  the exclusive lock and HDF5's "open for writing" mark. Writing beside it would corrupt the file, so the reopen
  tries again for `HELD_FOR_WRITING_WAIT_S`, then gives up with `HeldForWriting`, a sentence naming the cause: the
  file reads as partial and is not signed (what the other program wrote is not this program's recording).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import h5py

from workstation.recording import format as fmt
from workstation.recording.errors import RecordingError, is_lock_error

log = logging.getLogger(__name__)

HELD_FOR_WRITING_WAIT_S = 10.0  # how long the close waits for another program to let go of the file
RETRY_S = 0.1


class HeldForWriting(RecordingError):
    """Another program kept the closed recording open for writing: its closing attributes could not be added."""


def open_for_closing(path: Path, wait_s: float = HELD_FOR_WRITING_WAIT_S) -> h5py.File:
    """`h5py.File(path, "r+")` for the closing attributes: past a reader's lock; waiting up to `wait_s` for a program
    that holds the file for writing (with HDF5's lock or without it). Raises HeldForWriting if it still does, OSError
    for anything else."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            try:
                return h5py.File(path, "r+", libver=fmt.LIBVER)
            except OSError as exc:
                if not is_lock_error(exc):
                    raise
            h5 = h5py.File(path, "r+", libver=fmt.LIBVER, locking=False)  # a reader's lock: it only reads
            log.warning("%s is held open by a reader; adding the closing attributes without the file lock", path)
            return h5
        except OSError as exc:
            if "already open for write" not in str(exc):  # HDF5's mark: a writer has it, locked or not
                raise
            if time.monotonic() >= deadline:
                raise HeldForWriting(
                    f"Another program kept the recording {path} open for writing for {wait_s:.0f} s after the "
                    "session ended, so its closing attributes could not be added: it reads as partial and is not "
                    "signed. Close that program; what it changed is not checked.") from exc
            time.sleep(RETRY_S)
