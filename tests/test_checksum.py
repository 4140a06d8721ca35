"""The one SHA-256 routine (recorder, clinic store, replay): same digest as hashlib, progress after every chunk,
and a progress callback that raises abandons the hash."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from workstation.checksum import CHUNK_BYTES, sha256_of


def test_digest_and_progress(tmp_path: Path) -> None:
    data = os.urandom(2 * CHUNK_BYTES + 12345)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    seen: list[tuple[int, int]] = []
    assert sha256_of(path, lambda done, total: seen.append((done, total))) == hashlib.sha256(data).hexdigest()
    assert seen == [(CHUNK_BYTES, len(data)), (2 * CHUNK_BYTES, len(data)), (len(data), len(data))]
    assert sha256_of(path) == hashlib.sha256(data).hexdigest()


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert sha256_of(path, lambda d, t: None) == hashlib.sha256(b"").hexdigest()


def test_a_raising_progress_callback_abandons_the_hash(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * (3 * CHUNK_BYTES))
    calls = []

    def stop(done: int, total: int) -> None:
        calls.append(done)
        raise RuntimeError("closed")

    with pytest.raises(RuntimeError, match="closed"):
        sha256_of(path, stop)
    assert calls == [CHUNK_BYTES]
