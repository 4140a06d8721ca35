"""SHA-256 of a file, read in large chunks, with optional progress: the recorder writes it beside every recording
when it closes, the clinic store keeps it with the session, and replay checks it while the engineer works."""

from __future__ import annotations

import hashlib
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
