"""The one error of the recording package, a sentence naming the file and what is wrong with it, and the words for
the causes an OS or HDF5 error gives (never the library's own text: that goes to the log file)."""

import errno

from workstation.errors import UserError


class RecordingError(UserError):
    """A recording cannot be written or read: unwritable folder, full disk, not a recording, newer format..."""


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
