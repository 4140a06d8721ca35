"""The one error of the recording package, a sentence naming the file and what is wrong with it, and the words for
the causes an OS or HDF5 error gives (never the library's own text: that goes to the log file)."""

import errno
import shutil
from pathlib import Path

from workstation.errors import UserError


class RecordingError(UserError):
    """A recording cannot be written or read: unwritable folder, full disk, not a recording, newer format..."""


class RecordingNotStarted(RecordingError):
    """The recording's file was created but the disk refused its first metadata (it filled since the free-space
    check): no session started. Exit status 3, a failed recording's (workstation.session.outcome.EXIT_CODES)."""

    exit_code = 3


def is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return "unable to lock file" in text or "errno = 11" in text or getattr(exc, "errno", None) == errno.EAGAIN


def in_words(exc: BaseException) -> str:
    """The cause of an OS or HDF5 error as words for a sentence (", <reason>"), never the library's own text (that goes
    to the log file): the OS's description of its errno, or nothing."""
    if disk_full(exc):
        return ": the disk is full"
    strerror = getattr(exc, "strerror", None)
    if isinstance(strerror, str) and strerror and getattr(exc, "errno", None):
        return f" ({strerror.lower()})"
    if is_lock_error(exc):
        return ": another program holds the file locked"
    return ""


def disk_full(exc: BaseException) -> bool:
    """Whether a write failure means the disk (or the file's size limit) is full, from its errno or HDF5's text."""
    text = str(exc)
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) or any(
        m in text for m in ("errno = 28", "errno = 27", "errno = 122", "No space left", "File too large"))


def below_reserve_words(path: Path, free: int, reserve: int) -> str:
    """What the recorder says when free space (bytes) falls below its reserve: "nearly full" only while some space
    is left (≥ 1 MB); "full" with none or almost none (then the close itself may fail, and is reported apart)."""
    below = f", below the {reserve / 2**20:.0f} MB reserve" if free < reserve else ""
    if free >= 2**20:
        return (f"The disk holding {path} is nearly full (only {free / 2**20:.0f} MB left{below}): recording "
                "stopped while the file can still be closed. The session must stop; free some space before the next "
                "one.")
    left = "no space left" if free <= 0 else f"only {free / 2**10:.0f} kB left"
    return (f"The disk holding {path} is full ({left}{below}): recording stopped. The session must stop; free some "
            "space before the next one.")


# A write refused for want of space with less than this free (or than the reserve) is the disk being full: HDF5's
# writes are a chunk or a metadata block at a time, far below it.
DISK_FULL_BELOW_BYTES = 16 * 2**20


def _free_bytes(path: Path) -> int:
    """Free bytes on the disk holding `path` (0 when that cannot be read: taken as full)."""
    try:
        return shutil.disk_usage(path.parent).free
    except OSError:
        return 0


def stayed_full_words(path: Path) -> str:
    """Why a recording stopped for want of room kept no closing attributes: the disk stayed full, or, with the disk
    not full, the file could not grow (its size limit, a quota: not "the disk stayed full", a fresh tester, 19th)."""
    free = _free_bytes(path)
    return "the disk stayed full" if free < DISK_FULL_BELOW_BYTES else "the file could not grow (its size limit, or a quota)"


def full_words(path: Path, reserve: int) -> str:
    """What the recorder says when a write failed for want of space: the disk's own words (below_reserve_words)
    when it is full; else the file could not grow for another reason (its size limit, a quota)."""
    free = _free_bytes(path)
    if free < max(reserve, DISK_FULL_BELOW_BYTES):
        return below_reserve_words(path, free, reserve)
    return (f"The recording {path} could not grow (the file reached its size limit, or a disk quota), though the "
            f"disk has {free / 2**20:.0f} MB free: recording stopped. The session must stop; see the log file.")


def held_mark_words(path: Path) -> str:
    """Why no checksum was written beside a failed recording whose close left HDF5's "open for writing" mark that
    could not be cleared, because another program holds the file (workstation.recording.mark.still_marked): for the
    session's summary, after "sha256 not written: "."""
    from workstation.progname import command

    return (f"another program holds {path.name} open, so the \"open for writing\" mark its failed close left could not "
            "be cleared, and no checksum is taken of those bytes: once that program and this one are closed, "
            f"`{command('inspect')} {path}` clears the mark")
