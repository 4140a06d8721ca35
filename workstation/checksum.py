"""SHA-256 of a file, read in large chunks, with optional progress: the recorder writes it beside every recording
when it closes, the clinic store keeps it with the session, and replay checks it while the engineer works."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

CHUNK_BYTES = 4 * 2**20


def sha256_of(path: Path, progress: Callable[[int, int], None] | None = None) -> str:
    """The hex digest of the file at `path`. `progress(done_bytes, total_bytes)` is called after every chunk (on the
    calling thread); it may raise to abandon the computation, and the exception propagates."""
    h = hashlib.sha256()
    total = path.stat().st_size if progress is not None else 0
    done = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            h.update(chunk)
            if progress is not None:
                done += len(chunk)
                progress(done, total)
    return h.hexdigest()


def sha256_saved_in(text: str) -> str | None:
    """The SHA-256 (lower-case hex) a .sha256 file's text holds ("<hex>  <name>", sha256sum format), or None when it
    holds none (empty, cut short by a crash or a full disk, or another text)."""
    words = text.split()
    digest = words[0].lower() if words else ""
    return digest if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest) else None


def write_checksum(path: Path, target: Path, room: Path | None = None) -> str:
    """Hash `path` and save it in `target` ("<hex>  <name>", sha256sum format) with `atomic_write_text` (`room`: see
    there). Returns the digest; OSError (the temporary file removed) if it cannot be written, e.g. on a full disk."""
    digest = sha256_of(path)
    atomic_write_text(target, f"{digest}  {path.name}\n", room)
    return digest


def atomic_write_text(target: Path, text: str, room: Path | None = None) -> None:
    """Write `text` to `target` so that it is whole or absent, never empty or cut: a temporary file beside it is
    written and fsynced, then renamed over the name, and the folder is synced so the rename survives a power cut.

    `room`, a file in the same folder with at least as many bytes as `text` encoded, is used as that temporary file:
    its bytes are written over in place, so a disk another program filled cannot refuse them (the recorder's
    ballast). Without it, or when it is missing or too small, a new temporary file is written. OSError (the temporary
    file removed) if it cannot be written."""
    data = text.encode("utf-8")
    try:
        usable = room is not None and room.stat().st_size >= len(data)
    except OSError:
        usable = False
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        if usable:  # renamed first (a name needs no new space): a kill from here leaves the temporary file's name
            os.replace(room, tmp)
        with open(tmp, "r+b" if usable else "wb") as f:
            f.write(data)
            f.truncate(len(data))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        fd = os.open(target.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
