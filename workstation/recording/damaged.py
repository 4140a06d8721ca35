"""A recording that HDF5 cannot read: the one sentence for it, and the guard that turns whatever h5py raises while
reading a recording into that sentence.

Damaged bytes (a flipped bit, a bad sector, a copy gone wrong) reach the reader as any of several h5py exceptions:
KeyError ("incorrect metadata checksum"), OSError ("ran off end of input buffer", "bad heap pointer"), RuntimeError
(iterating a damaged attribute list), ValueError or TypeError (a dataset or attribute of the wrong type or shape),
AttributeError (an object h5py returns as None). Whichever it is, the person gets one sentence (`damaged_error`,
a RecordingError: exit status 2 on the command line), the library's own text goes to the log. "Not a Cicatrix
recording" (`NotARecording`) is kept for a file that is readable and has no mark of a Cicatrix recording at all."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from workstation.recording.errors import RecordingError

log = logging.getLogger(__name__)

# What h5py (and decoding what it returns) raises on damaged bytes; RecordingError is none of them.
HDF5_ERRORS: tuple[type[Exception], ...] = (OSError, KeyError, ValueError, RuntimeError, TypeError, AttributeError,
                                            IndexError)

# How many bytes from the start are searched for the format name when the HDF5 signature itself is gone.
SIGNATURE_SEARCH_BYTES = 64 * 2**10


class NotARecording(RecordingError):
    """The file is not a Cicatrix recording at all (not HDF5, or HDF5 without the format marker); the replay window
    suggests choosing a recording after this error only."""


def damaged_error(path: Path | str, exc: BaseException | None = None,
                  what: str = "a part of it cannot be read") -> RecordingError:
    """The one sentence for a damaged recording; `what` says which part, when known. The cause goes to the log."""
    if exc is not None:
        log.info("%s is damaged (%s): %s: %s", path, what, type(exc).__name__, exc, exc_info=exc)
    else:  # found by the reader's own checks: the log has what it found, as the sentence says
        log.info("%s is damaged: %s", path, what)
    return RecordingError(f"{path} is a damaged HDF5 file: {what} (details in the log). Open a backup copy of it (the "
                          "copy taken to the clinic store, if any), or ask for the recording to be examined.")


@contextmanager
def reading(path: Path | str, what: str = "a part of it cannot be read") -> Iterator[None]:
    """Whatever h5py raises inside becomes `damaged_error` (RecordingError passes as it is)."""
    try:
        yield
    except HDF5_ERRORS as exc:
        raise damaged_error(path, exc, what) from exc


F = TypeVar("F", bound=Callable[..., Any])


def guarded(method: F) -> F:
    """A Recording method that reads the file: h5py's exceptions become `damaged_error` for `self.path`."""
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with reading(self.path):
            return method(self, *args, **kwargs)
    return wrapper  # type: ignore[return-value]


def lost_signature_error(path: Path) -> RecordingError:
    """For a file h5py does not see as HDF5: damaged when its first bytes still hold the Cicatrix format name (the
    root's attributes are written near the start), else not a recording."""
    from workstation.recording.format import FORMAT_NAME

    try:
        with open(path, "rb") as f:
            head = f.read(SIGNATURE_SEARCH_BYTES)
    except OSError:
        head = b""
    if FORMAT_NAME.encode() in head:
        return damaged_error(path, None, "its HDF5 signature is damaged, so no program can open it")
    return NotARecording(f"{path} is not an HDF5 file, so it is not a Cicatrix recording.")


def refused_for_its_mark(exc: BaseException) -> bool:
    """Whether h5py refused to open a file for HDF5's "open for writing" mark (a writer has it, or one was killed):
    the one case a SWMR reader is tried. Never on a damaged file: a SWMR reader retries metadata whose checksum fails,
    sleeping between tries, for minutes (a fresh tester of issue 12: `verify` on one flipped superblock byte)."""
    return "already open for write" in str(exc) or "consistency flags" in str(exc)


def open_error(path: Path, exc: BaseException) -> RecordingError:
    """What h5py's refusal to open a recording means, in words: in use (whatever h5py said: a file read while a
    program writes it can look truncated or damaged), marked open by a writer that is gone, truncated, or damaged
    (the library's own text goes to the log)."""
    from workstation.recording.reader import clear_mark_advice, in_use_error, written_now

    text = str(exc)
    log.info("opening %s: %s", path, text)
    if any(m in text for m in ("already open for write", "consistency flags", "unable to lock file",
                               "not already open for SWMR writing")):
        if (in_use := in_use_error(path)) is not None:
            return in_use
        return RecordingError(
            f"{path} is marked as open for writing, but no program holds it: the program that wrote it stopped "
            f"without closing it and did not record it as a live session. {clear_mark_advice(path)}")
    if (in_use := written_now(path)) is not None:  # a file being written reads as cut short or garbled: not so
        return in_use
    if "truncated" in text or "eof" in text.lower():
        sizes = re.search(r"eof = (\d+).*stored_eof = (\d+)", text)
        how = (f": it holds {int(sizes[1]):,} bytes of the {int(sizes[2]):,} its structure says" if sizes else "")
        return RecordingError(f"{path} is truncated{how}. The program writing it stopped before closing it, or the "
                              "copy is incomplete: copy it again from where it was written, if you can.")
    return damaged_error(path, exc, "it cannot be opened")
