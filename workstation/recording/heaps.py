"""HDF5's global heap collections of a closed recording, checked before any of their texts is read.

Variable-length strings (the events', commands' and plans' texts, string attributes) live in "global heap
collections" (HDF5 file format, III.E: a `GCOL` header, then objects of a 16-byte header each, the last one free
space up to the collection's end). The bundled HDF5 walks a collection's objects without checking that the walk
moves on: damaged bytes that make an object free space of size 0 (or a size that wraps the walk around) make it loop
for ever, and the reader with it (found by the loaded test runs of issue 12: one 4-byte flip in the last collection of
a recording hung `test_s6a_damaged_bytes` for good). So the reader walks every collection first, in Python, the way
HDF5 will, and calls a collection whose walk does not end exactly at its end damaged (`damaged_heap`).

Collections are found by their signature in the bytes that are not a dataset's chunk (telemetry and tables are
chunked: what is left is HDF5's metadata and the collections, a few hundred kB for an hour of recording); a
collection's own bytes are skipped once checked, so a text that spells `GCOL` is never taken for one. Live files
(SWMR) are not checked: their writer extends collections while they are read.
"""

from __future__ import annotations

import struct
from pathlib import Path

import h5py

SIGNATURE = b"GCOL"
HEADER_BYTES = 16  # "GCOL", version 1, 3 reserved, the collection's size (8 bytes: our files' "size of lengths")
OBJECT_HEADER_BYTES = 16  # heap object index (2), reference count (2), reserved (4), the object's size (8)
MIN_COLLECTION_BYTES = 4096  # H5HG_MINSIZE: HDF5 never writes a smaller collection
READ_BYTES = 1 << 20


def damaged_heap(path: Path, h5: h5py.File) -> str | None:
    """Where the first damaged collection is, in words ("the heap of texts at byte 1101733"), or None when every
    collection walks to its end. Reads only the bytes outside the datasets' chunks."""
    skip = sorted(_chunk_ranges(h5))
    size = h5.id.get_filesize()
    with open(path, "rb") as f:
        pos = 0
        for start, end in [*skip, (size, size)]:
            while pos < start:  # a stretch of metadata and collections
                limit = min(start - pos, READ_BYTES)
                f.seek(pos)
                at = f.read(limit + len(SIGNATURE) - 1).find(SIGNATURE, 0, limit + len(SIGNATURE) - 1)
                if at < 0 or at >= limit:
                    pos += limit
                    continue
                pos += at
                length = _walk(f, pos, size)
                if length is None:
                    return f"the heap of texts at byte {pos}"
                pos += max(length, len(SIGNATURE))
            pos = max(pos, end)
    return None


def _walk(f, at: int, file_size: int) -> int | None:
    """The size of the collection at `at` if it walks to its end as HDF5 walks it; None if it does not (it would
    loop or run past its end); a signature not followed by a collection header is not a collection (its 4 bytes)."""
    f.seek(at)
    head = f.read(HEADER_BYTES)
    if len(head) < HEADER_BYTES or head[4] != 1:
        return len(SIGNATURE)
    size = struct.unpack_from("<Q", head, 8)[0]
    if size < MIN_COLLECTION_BYTES or at + size > file_size:
        return None
    f.seek(at)
    chunk = f.read(size)
    p = HEADER_BYTES
    while p < size:
        if p + OBJECT_HEADER_BYTES > size:  # a tail too small for an object header: free space (as HDF5 takes it)
            return size
        index, _refs, _reserved, length = struct.unpack_from("<HHIQ", chunk, p)
        step = (OBJECT_HEADER_BYTES + (length + 7) // 8 * 8) if index else length
        if step <= 0 or p + step > size:  # HDF5's walk stands still here, or wraps around: it never ends
            return None
        p += step
    return size


def _chunk_ranges(h5: h5py.File) -> list[tuple[int, int]]:
    """(start, end) byte ranges of every chunk of every chunked dataset in the file."""
    ranges: list[tuple[int, int]] = []

    def visit(_name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset) and obj.chunks:
            obj.id.chunk_iter(lambda c: ranges.append((c.byte_offset, c.byte_offset + c.size)))

    h5.visititems(visit)
    return ranges
