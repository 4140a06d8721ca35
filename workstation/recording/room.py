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


# How far below its largest allowed size a recording stops (a limit the disk's free space does not show): the close
# and the next flush take far less (a flush is ~40 kB at 0.2 s; the close a few kB), a stall's backlog more.
SIZE_LIMIT_MARGIN_BYTES = 16 * 2**20


def file_size_limit(where: int | Path) -> tuple[int, str] | None:
    """The largest size (bytes) a file this process writes at `where` (an open file's descriptor, or a folder) may
    reach, and what sets it, in words: this process's file size limit (RLIMIT_FSIZE, `ulimit -f`; a write past it
    fails with EFBIG, "File too large") or the filesystem's largest file (pathconf FILESIZEBITS: FAT32's 2 GiB as
    POSIX counts it). None when neither limits it. A disk quota is not seen here: `hold` meets it (EDQUOT)."""
    limits: list[tuple[int, str]] = []
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY:
            limits.append((soft, "this program's file size limit (ulimit -f)"))
    except (ImportError, OSError, ValueError):  # not on Windows
        pass
    try:
        bits = os.fpathconf(where, "PC_FILESIZEBITS") if isinstance(where, int) else os.pathconf(where, "PC_FILESIZEBITS")
        if 0 < bits < 63:
            limits.append((2 ** (bits - 1) - 1, "the filesystem of the recordings folder"))
    except (OSError, ValueError, AttributeError):  # no pathconf on Windows
        pass
    return min(limits) if limits else None


def _size(n: int) -> str:
    """A size in words that never rounds two different sizes to one figure (a fresh tester: "allows is 600 MB; needs
    600 MB" of 614 399 kB): whole MB, else whole kB, else bytes."""
    if n % 2**20 == 0:
        return f"{n // 2**20:,} MB"
    return f"{n // 2**10:,} kB" if n % 2**10 == 0 else f"{n:,} bytes"


def too_small_a_limit(folder: Path, needed: int) -> str | None:
    """Why a session cannot record into `folder`: a file there may not grow to `needed` bytes, in words; else None."""
    limit = file_size_limit(folder)
    if limit is None or limit[0] >= needed:
        return None
    return (f"The largest file {limit[1]} allows is {_size(limit[0])}; a session's recording needs room to grow to "
            f"{_size(needed)}. Record where no such limit applies, or raise it, then start again.")


def check_growth(fd: int, path: Path) -> None:
    """BelowReserve (errno EFBIG) when the open recording `fd` at `path` has come within SIZE_LIMIT_MARGIN_BYTES of
    the largest size it may reach (`file_size_limit`): the recorder stops while the file can still be closed whole.
    Before, the write past the limit failed mid-file, the close could not finish, and the file no tool could open
    was checksummed and signed (a fresh tester of issue 12, nineteenth session: `ulimit -f 8250`)."""
    limit = file_size_limit(fd)
    if limit is None:
        return
    size = os.fstat(fd).st_size
    if limit[0] - size < SIZE_LIMIT_MARGIN_BYTES:
        raise BelowReserve(errno.EFBIG, f"The recording {path} has reached {size / 2**20:.2f} MB of the "
                                        f"{_size(limit[0])} largest file {limit[1]} allows: recording stopped while "
                                        "the file can still be closed. The session must stop; record the next one "
                                        "where no such limit applies.")


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
