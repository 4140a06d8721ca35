"""HDF5's "open for writing" mark on a recording whose writer was killed: found, and cleared as `h5clear -s` does.

A SWMR writer sets the superblock's file-consistency flags when it opens the file and clears them when it closes it.
A killed writer leaves them set for good, and HDF5 (h5dump, h5ls, HDFView, MATLAB, plain `h5py.File(path, "r")`)
then refuses the file and prints h5clear advice. HDF5 offers no public call that clears them (h5clear uses a private
file-access property), so this module does what `h5clear -s` does to the bytes: in a version 2 or 3 superblock
(HDF5 file format specification, "Superblock"), the flags byte set to 0 and the superblock's Jenkins lookup3
checksum written again. Nothing else changes; the result is byte-identical to h5clear's (tests/test_recording_mark.py).

Clearing changes the file's bytes, so its SHA-256 changes: it is done only on a file nobody holds open, and before
any checksum or signature is taken of it (crash recovery clears the mark, then links the file's SHA-256 in the
clinic store; `verify` and `inspect` clear it only on a file that has no checksum of its own and is not indexed, or
where the mark is all that differs from the bytes its .sha256 was taken of: another program's, left by a kill).
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import sys
import time
from pathlib import Path

from workstation.checksum import CHUNK_BYTES
from workstation.recording.errors import RecordingError

SIGNATURE = b"\x89HDF\r\n\x1a\n"
SEARCH_OFFSETS = (0, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)  # the superblock follows a user block
# A reserve file with no recording beside it is stale only once it is this old (s): a recorder being created writes its
# reserve a moment before the recording itself.
ORPHAN_BALLAST_AGE_S = 60.0
FLAGS_AT = 11  # after the signature (8), version (1), sizes of offsets and lengths (1 + 1)
M32 = 0xFFFFFFFF

__all__ = ["clear_open_mark", "clear_unclaimed_mark", "ended_by_a_write_failure", "held_by_a_process",
           "keep_kill_trace", "lookup3", "open_mark", "remove_ballast", "remove_kill_trace", "remove_stale_ballast",
           "remove_stale_ballasts", "swmr_mark"]


SWMR_WRITE_FLAG = 0x04  # superblock v3 file consistency flags: bit 2, opened for SWMR writing (HDF5 file format)


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & M32


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 `hashlittle` (32 bits), the checksum of HDF5's metadata (H5_checksum_lookup3)."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & M32
    i = 0
    while length - i > 12:
        x, y, z = struct.unpack_from("<3I", data, i)
        a, b, c = (a + x) & M32, (b + y) & M32, (c + z) & M32
        a = ((a - c) & M32) ^ _rot(c, 4)
        c = (c + b) & M32
        b = ((b - a) & M32) ^ _rot(a, 6)
        a = (a + c) & M32
        c = ((c - b) & M32) ^ _rot(b, 8)
        b = (b + a) & M32
        a = ((a - c) & M32) ^ _rot(c, 16)
        c = (c + b) & M32
        b = ((b - a) & M32) ^ _rot(a, 19)
        a = (a + c) & M32
        c = ((c - b) & M32) ^ _rot(b, 4)
        b = (b + a) & M32
        i += 12
    if length == i:
        return c
    x, y, z = struct.unpack("<3I", data[i:].ljust(12, b"\0"))  # the tail, zero-padded: the same sums as its cases
    a, b, c = (a + x) & M32, (b + y) & M32, (c + z) & M32
    c = ((c ^ b) - _rot(b, 14)) & M32
    a = ((a ^ c) - _rot(c, 11)) & M32
    b = ((b ^ a) - _rot(a, 25)) & M32
    c = ((c ^ b) - _rot(b, 16)) & M32
    a = ((a ^ c) - _rot(c, 4)) & M32
    b = ((b ^ a) - _rot(a, 14)) & M32
    c = ((c ^ b) - _rot(b, 24)) & M32
    return c


def _superblock(head: bytes) -> tuple[int, int] | None:
    """(offset of the superblock, its length without the checksum) for a version 2/3 superblock, else None."""
    for at in SEARCH_OFFSETS:
        if head[at:at + 8] == SIGNATURE and len(head) >= at + 12:
            if head[at + 8] not in (2, 3):
                return None  # versions 0 and 1 keep no such flags in this place (and no checksum)
            size_of_offsets = head[at + 9]
            return at, 12 + 4 * size_of_offsets  # flags, then base, extension, EOF and root addresses
    return None


def _read_head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(SEARCH_OFFSETS[-1] + 64)


def open_mark(path: Path) -> bool:
    """Whether the recording carries HDF5's "open for writing" mark (superblock flags not 0). False for a file
    that is not HDF5 or whose superblock has no such flags. OSError if it cannot be read."""
    head = _read_head(path)
    found = _superblock(head)
    return found is not None and head[found[0] + FLAGS_AT] != 0


def still_marked(path: Path | None) -> bool:
    """Whether the recording at `path` still carries HDF5's "open for writing" mark after its clearing was tried:
    refused while another program holds the file (clear_open_mark). No .sha256, .sig or store index entry is ever
    taken of such bytes: h5dump and HDFView do not open them, and the clearing that has to come later would change
    them (a false tamper alarm, and a signed file is never cleared). Crash recovery leaves such a file unsealed and
    unindexed, and seals it once that program has closed it (workstation.session.journal.recover_recordings_here: the
    next start, `recording sync`, the window's copier). False when there is no file or it cannot be read."""
    if path is None or not path.is_file():
        return False
    try:
        return open_mark(path)
    except OSError:
        return False


def swmr_mark(path: Path) -> bool:
    """Whether the recording's "open for writing" mark is a SWMR writer's (superblock flag bit 2): a Cicatrix
    recorder, live or killed, rather than another program's ordinary writer. False if there is no such mark."""
    head = _read_head(path)
    found = _superblock(head)
    return found is not None and bool(head[found[0] + FLAGS_AT] & SWMR_WRITE_FLAG)


def held_by_a_process(path: Path, *, for_writing: bool = False, but_this_one: bool = False) -> bool:
    """Whether any process (this one included, unless `but_this_one`) has the file open, or holds a lock on it; with
    `for_writing`, only one that has it open for writing (a reader does not count) or holds HDF5's exclusive lock. On
    Linux every process's open files are looked at (/proc/<pid>/fd, and their mode in /proc/<pid>/fdinfo); elsewhere
    only locks can be seen (and with `but_this_one` none: this process's own lock would answer)."""
    if sys.platform != "win32" and not but_this_one:
        import fcntl

        try:
            with open(path, "rb") as f:
                try:
                    fcntl.flock(f.fileno(), (fcntl.LOCK_SH if for_writing else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                except OSError:
                    return True
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        except OSError:
            return True
    proc = Path("/proc")
    if not (proc / "self" / "fd").is_dir():
        return sys.platform == "win32"  # no way to look: only a lock would show, and Windows has none to probe
    st = path.stat()
    for pid in proc.iterdir():
        if not pid.name.isdigit() or (but_this_one and int(pid.name) == os.getpid()):
            continue
        try:
            fds = list((pid / "fd").iterdir())
        except OSError:
            continue  # another user's process, or gone: it cannot hold our file open for writing unnoticed here
        for fd in fds:
            try:
                other = os.stat(fd)
            except OSError:
                continue
            if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino) and (not for_writing or _writable(fd)):
                return True
    return False


def _writable(fd: Path) -> bool:
    """Whether the open file `fd` (/proc/<pid>/fd/<n>) was opened for writing (its fdinfo flags), True if unknown."""
    try:
        text = (fd.parent.parent / "fdinfo" / fd.name).read_text()
    except OSError:
        return True
    flags = next((int(line.split()[1], 8) for line in text.splitlines() if line.startswith("flags:")), None)
    return flags is None or flags & os.O_ACCMODE != os.O_RDONLY


def clear_open_mark(path: Path, *, own: bool = False) -> bool:
    """Clear HDF5's "open for writing" mark of a recording whose writer is gone, as `h5clear -s` does (module
    docstring). Returns True if the mark was cleared, False if there was none. RecordingError (in words) if a
    process holds the file (it may be a live session: never touched) or the superblock is not what HDF5 wrote (its
    checksum does not match: the file is left as it was). `own`: the recorder clearing the mark its own reopen left
    when the disk refused that reopen's close (writer.py): this process may still hold the file, no other may."""
    if not open_mark(path):
        return False
    if held_by_a_process(path, but_this_one=own):
        raise RecordingError(f"{path} is open in another program (a session may still be recording it): its "
                             "\"open for writing\" mark is left alone. Try again once that program has closed it.")
    fd = os.open(path, os.O_RDWR)
    try:
        cleared = _unmarked_superblock(os.pread(fd, SEARCH_OFFSETS[-1] + 64, 0))
        if cleared is None:
            return False
        if not cleared:
            raise RecordingError(f"{path}'s HDF5 superblock does not match its own checksum: the file is damaged, "
                                 "and its \"open for writing\" mark is left alone. Open a backup copy of it.")
        at, block = cleared
        os.pwrite(fd, block[FLAGS_AT:FLAGS_AT + 1], at + FLAGS_AT)
        os.pwrite(fd, block[-4:], at + len(block) - 4)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def clear_own_mark(path: Path) -> bool:
    """For the recorder whose reopen (to add the closing attributes) could not close: the reopen set the "open for
    writing" mark, and a close the disk refused (another program filling it to the last byte) left it, so no reader
    opened the file. The recording is as its SWMR writer closed it, with every row: the mark is cleared in place (no
    byte allocated) before any checksum is taken, and the file reads as partial. True if cleared; never raises."""
    log = logging.getLogger(__name__)
    try:
        if clear_open_mark(path, own=True):
            log.warning("%s: cleared the \"open for writing\" mark its failed close left", path)
            return True
    except (RecordingError, OSError) as exc:
        log.warning("%s keeps the \"open for writing\" mark its failed close left: %s", path, exc)
    return False


def sha256_unmarked(path: Path) -> str | None:
    """The SHA-256 the recording's bytes would have with its "open for writing" mark cleared as clear_open_mark
    clears it (flags 0, the superblock's checksum written again); None if it has no mark or its superblock does not
    match its own checksum. Nothing is written. OSError if it cannot be read."""
    head = _read_head(path)
    cleared = _unmarked_superblock(head)
    if not cleared:
        return None
    at, block = cleared
    h = hashlib.sha256(head[:at] + block)
    with open(path, "rb") as f:
        f.seek(at + len(block))
        while chunk := f.read(CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()


def _unmarked_superblock(head: bytes) -> tuple[int, bytes] | tuple[()] | None:
    """The superblock of the file whose first bytes are `head` as clearing its mark leaves it: (its offset, its
    bytes with the flags 0 and its lookup3 checksum written again), what `h5clear -s` writes. None when it carries no
    mark (or is no version 2/3 superblock); () when it does not match its own checksum (damaged: never cleared)."""
    found = _superblock(head)
    if found is None or head[found[0] + FLAGS_AT] == 0:
        return None
    at, n = found
    block = bytearray(head[at:at + n])
    if lookup3(bytes(block)) != struct.unpack_from("<I", head, at + n)[0]:
        return ()
    block[FLAGS_AT] = 0
    return at, bytes(block) + struct.pack("<I", lookup3(bytes(block)))


def _clearing_restores_checksum(path: Path) -> bool:
    """Whether the mark is all that differs from the bytes the recording's .sha256 holds the SHA-256 of: another
    program opened the closed file for writing and did not close it (killed, or crashed), changing nothing else."""
    from workstation.checksum import sha256_saved_in
    from workstation.recording.format import checksum_path

    try:
        saved = sha256_saved_in(checksum_path(path).read_text(encoding="ascii", errors="replace"))
    except OSError:
        return False
    return saved is not None and sha256_unmarked(path) == saved


def clear_unclaimed_mark(path: Path, indexed: bool) -> str | None:
    """For `verify` and `inspect`: clear the mark of a killed recorder's file when nothing has taken its SHA-256 yet
    (no .sha256 or .sig beside it, and the clinic store does not index it: `indexed` is the caller's look-up) and
    no process holds it; or, on a checksummed file, when the mark is all that differs from the bytes its .sha256
    holds (another program's, left by a kill: cleared, the file is again exactly as checksummed and signed, where a
    mark left in place read as "changed after it was closed" and h5dump refused it: a fresh tester of issue 12).
    Returns a sentence saying it was done, or None when the file was left as it was (no mark, a checksum taken of
    the marked bytes, held by a process, or its superblock damaged: the reader then says so)."""
    from workstation.recording.format import freed_ballast_path, sidecar_paths

    try:
        if not open_mark(path) or held_by_a_process(path):
            return None  # held (a live session's file above all): never touched, and nothing is left beside it
        if indexed or any(p.exists() for p in sidecar_paths(path)):
            if not _clearing_restores_checksum(path) or not clear_open_mark(path):
                return None
            return (f"cleared the \"open for writing\" mark another program left in {path.name} (it opened the closed "
                    "file for writing and did not close it; nothing else changed: the file is again exactly as "
                    "checksummed), so h5dump, HDFView and MATLAB open it")
        # the mark is the kill's evidence for crash recovery (ended_by_a_write_failure): its trace is left first (a
        # third fresh tester of issue 12: the reserve file deleted by hand, then `inspect`, read as a write failure)
        had_trace = freed_ballast_path(path).exists()
        keep_kill_trace(path)
        cleared = False
        try:
            cleared = clear_open_mark(path)
        finally:
            if not cleared and not had_trace:  # the mark stays (a program took the file meanwhile): so does no trace
                remove_kill_trace(path)
        if not cleared:
            return None
    except (RecordingError, OSError):
        return None
    return (f"cleared the \"open for writing\" mark its killed recorder left in {path.name} (nothing else changed; "
            "it had no checksum yet), so h5dump, HDFView and MATLAB open it")


def remove_stale_ballast(h5_path: Path) -> str | None:
    """Empty or remove the recorder's reserve file (`format.ballast_path`) beside `h5_path` when its writer is gone:
    no process holds the recording (`held_by_a_process`: a live SWMR writer keeps it open), or there is no recording
    and the reserve is over ORPHAN_BALLAST_AGE_S old. Returns a sentence saying so, or None (none there, its writer
    alive, or it could not be removed: logged). A killed recorder leaves it; with a store, crash recovery removes it
    too. Beside its recording, its name is kept, emptied (`format.freed_ballast_path`), for crash recovery to read the
    kill."""
    from workstation.recording.format import ballast_path, freed_ballast_path

    ballast = ballast_path(h5_path)
    emptied = h5_path.exists()
    try:
        size = ballast.stat().st_size
        if emptied:
            if held_by_a_process(h5_path):
                return None
            _free_keeping_the_kill(ballast, freed_ballast_path(h5_path))
        elif time.time() - ballast.stat().st_mtime < ORPHAN_BALLAST_AGE_S:
            return None
        else:
            ballast.unlink()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logging.getLogger(__name__).info("the stale reserve file %s was not removed: %s", ballast, exc)
        return None
    return (f"{'emptied' if emptied else 'removed'} the {size / 2**20:.0f} MB reserve file a stopped recorder left "
            f"beside {h5_path.name} (its writer is gone; the recording itself is untouched)")


def _free_keeping_the_kill(ballast: Path, freed: Path) -> None:
    """Give a killed recorder's ballast room back, its name kept as `freed`: renamed first (a name needs no room),
    then emptied. Crash recovery reads a recording with no end and no ballast as one whose recorder failed (a full
    disk), not as a crash: without this trace, `inspect` before the next start made a crash read so (a fresh tester
    of issue 12). If it cannot be renamed, it is removed all the same (logged)."""
    try:
        os.replace(ballast, freed)
    except OSError as exc:
        logging.getLogger(__name__).warning("the stale reserve file %s could not be kept as %s (%s): crash recovery "
                                            "may read its session's kill as a write failure", ballast, freed.name, exc)
        ballast.unlink()
        return
    os.truncate(freed, 0)


def remove_stale_ballasts(folder: Path) -> list[str]:
    """`remove_stale_ballast` for every reserve file in a recordings folder and its date folders (YYYY-MM-DD)."""
    from workstation.recording.format import BALLAST_GLOB, FREED_BALLAST_GLOB, recording_of_ballast

    said: list[str] = []
    for pattern in (BALLAST_GLOB, f"*/{BALLAST_GLOB}"):
        for ballast in sorted(Path(folder).glob(pattern)):
            if (done := remove_stale_ballast(recording_of_ballast(ballast))) is not None:
                said.append(done)
    for pattern in (FREED_BALLAST_GLOB, f"*/{FREED_BALLAST_GLOB}"):  # an emptied trace whose recording is gone
        for freed in Path(folder).glob(pattern):
            if not recording_of_ballast(freed).exists():
                freed.unlink(missing_ok=True)
    return said


def ended_by_a_write_failure(path: Path | None) -> bool:
    """Whether the files say the recorder of the recording at `path` stopped on a write failure of its own (most
    often a full disk) rather than being killed: the file was closed (a killed recorder leaves HDF5's "open for
    writing" mark), and neither its reserve file (format.ballast_path: a recorder gives it back only on a write
    failure or at its close; a killed one leaves it) nor the trace of one (format.freed_ballast_path: left by whatever
    gave a killed recorder's room back, `inspect`, the next recorder in the folder, or this recovery until the store
    holds its verdict) is beside it. False when there is no file or it cannot be read."""
    from workstation.recording.format import ballast_path, freed_ballast_path

    if path is None or not path.is_file() or ballast_path(path).exists() or freed_ballast_path(path).exists():
        return False
    try:
        return not open_mark(path)
    except OSError:
        return False


def keep_kill_trace(path: Path | None) -> None:
    """Leave the kill's trace (format.freed_ballast_path, 0 bytes) beside a killed recorder's recording before crash
    recovery gives its reserve file's room back and clears its mark: a restart stopped before the store holds the
    verdict (a store busy or gone, a kill, a power cut) would otherwise read the kill as a write failure (a fresh
    tester of issue 12); and before `inspect` or `verify` clears the mark (clear_unclaimed_mark). Removed by
    remove_kill_trace once the store holds the verdict."""
    from workstation.recording.format import freed_ballast_path

    if path is None or not path.is_file():
        return
    try:
        freed_ballast_path(path).touch()
    except OSError as exc:
        logging.getLogger(__name__).warning(
            "the trace of the killed recorder of %s was not kept (%s): if this start stops before the store is "
            "written, the next one may read the kill as a write failure", path.name, exc)


def remove_kill_trace(path: Path | None) -> None:
    """Remove the kill's trace (keep_kill_trace) once the store holds the session's verdict."""
    from workstation.recording.format import freed_ballast_path

    if path is not None:
        _remove_logged(freed_ballast_path(path))


def remove_ballast(path: Path | None) -> None:
    """Remove the recorder's hidden reserve file (workstation.recording.format.ballast_path) a crash left behind: its
    room. The kill's trace is kept until the store holds the verdict (remove_kill_trace)."""
    from workstation.recording.format import ballast_path

    if path is not None:
        _remove_logged(ballast_path(path))


def _remove_logged(left: Path) -> None:
    """Remove a file beside a recording if it is there; a failure is logged, never raised (the caller goes on)."""
    try:
        left.unlink(missing_ok=True)
    except OSError as exc:
        logging.getLogger(__name__).info("%s not removed (%s)", left.name, type(exc).__name__)
