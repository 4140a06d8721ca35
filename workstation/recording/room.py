"""Disk space a file holds past its end, so that what it must still write finds room on a disk another program fills.

A recording's writes and its close need a little space at the moment the disk is full. Space given back for them
(the ballast, emptied) is taken at once by a program still filling the disk (a fresh tester of issue 12: `dd` to the
last byte, the freed room taken, HDF5's close failed and the trips were not in the file). Space held *inside* the
file, past its end, cannot be taken: Linux's `fallocate` with FALLOC_FL_KEEP_SIZE allocates the blocks without
changing the file's size, and a write that extends the file uses them. Its bytes are not part of the file (its size,
its SHA-256 and every reader see the file as written).

`hold` asks for the room at each flush (blocks already held cost nothing); when the disk cannot give it, the caller
stops writing while the room of the previous flush still holds what the close writes. Where the call does not exist
(not Linux) or the filesystem does not support it, `hold` says so and the caller relies on its other reserve.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from pathlib import Path

FALLOC_FL_KEEP_SIZE = 0x01  # linux/falloc.h
_UNSUPPORTED = {errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class BelowReserve(OSError):
    """Free space fell below the recorder's reserve, or the room past the file's end could not be held: the recorder
    stops while the file can still be closed whole (errno ENOSPC; its strerror is the sentence to show)."""


def _fallocate():
    try:
        call = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError, TypeError):  # no C library by that name (Windows), or no fallocate (macOS)
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    call.restype = ctypes.c_int
    return call


_FALLOCATE = _fallocate()


def hold(fd: int, nbytes: int) -> bool:
    """Hold `nbytes` of disk space past the current end of the open file `fd` (its size unchanged).

    True when held; False when this OS or filesystem cannot hold room this way (nothing changed). OSError with
    errno ENOSPC (or EDQUOT) when the disk has not that much room left: what was held before stays held."""
    if _FALLOCATE is None or nbytes <= 0:
        return False
    end = os.fstat(fd).st_size
    if _FALLOCATE(fd, FALLOC_FL_KEEP_SIZE, end, nbytes) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code))


def give_back(path: Path) -> None:
    """Return the room `hold` kept past the end of the file at `path` to the disk; the file's bytes are not touched
    (a truncate to its own size frees the blocks past its end, on ext4, XFS and tmpfs alike). Best effort: a file gone
    keeps nothing, a filesystem that keeps them frees them when the file is deleted."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDWR)
        try:
            os.ftruncate(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)


def write_ballast(path: Path, size: int) -> None:
    """Reserve `size` bytes of the disk for the recording's own close (writer.SessionRecorder._fail), written and
    synced. The file is made even with no bytes: from the recording's creation to the end of its close, a ballast
    beside a file held open for writing says the holder is the recording's own session (reader.in_use_error)."""
    try:
        with open(path, "wb") as f:
            block = b"\xff" * min(size, 2**20)
            left = size
            while left > 0:
                left -= f.write(block[:left])
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


CHECKSUM_ROOM_BYTES = 4096  # what an emptied ballast keeps: the room of the .sha256 it becomes (atomic_write_text)


def empty_ballast(ballast: Path) -> None:
    """Give the ballast's room back to the disk but for CHECKSUM_ROOM_BYTES, keeping the file (`write_ballast`): the
    checksum is still written over those bytes when another program takes the rest (a fresh tester of issue 12, on a
    filesystem that cannot hold room past a file's end). Gone already: nothing to do."""
    with contextlib.suppress(OSError):
        os.truncate(ballast, min(os.path.getsize(ballast), CHECKSUM_ROOM_BYTES))
