"""A damaged heap of texts that would make HDF5 read for ever is called damaged at once (workstation/recording/heaps.py).

Found by the loaded test runs of issue 12 (seventeenth session): `test_s6a_damaged_bytes` set 4 bytes to 0xff in the
last global heap collection of a recording (the object header of its last text: 3 reserved bytes and the low byte of
its size), and the bundled HDF5, reading /events, looped for ever in H5HG__cache_heap_deserialize (gdb); the run
never ended. Each case runs `inspect` in a process of its own with a time limit, so that the code before fails here
instead of hanging the suite.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers_load import scenario_run

from workstation.recording import Recording
from workstation.recording.heaps import damaged_heap

ROOT = Path(__file__).resolve().parents[1]
DAMAGED = "is a damaged HDF5 file"


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """A real headless session's recording (combined-uneventful), closed."""
    return Path(scenario_run("combined-uneventful", tmp_path_factory.mktemp("heap-session")).recording)


def _collections(path: Path) -> list[tuple[int, list[int]]]:
    """(offset, [object header offsets, free space last]) of each global heap collection, by a raw walk."""
    data = path.read_bytes()
    found, at = [], data.find(b"GCOL")
    while at >= 0:
        size = struct.unpack_from("<Q", data, at + 8)[0]
        objects, p = [], at + 16
        while p + 16 <= at + size:
            index, _, _, length = struct.unpack_from("<HHIQ", data, p)
            objects.append(p)
            p += 16 + (length + 7) // 8 * 8 if index else length
        found.append((at, objects))
        at = data.find(b"GCOL", at + size)
    return found


def _inspect(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "inspect", str(path)], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ), cwd=ROOT)


def _damaged_copy(src: Path, folder: Path, offset: int, new: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / "copy.h5"
    shutil.copyfile(src, dst)
    with open(dst, "r+b") as f:
        f.seek(offset)
        f.write(new)
    return dst


def test_an_intact_recording_has_every_collection_walked_and_reads(recording):
    collections = _collections(recording)
    assert len(collections) >= 2  # the attributes' and the tables' texts
    with h5py.File(recording, "r", locking=False) as h5:
        assert damaged_heap(recording, h5) is None
    with Recording.open(recording) as rec:
        assert rec.events


@pytest.mark.parametrize("case", ["tester-flip", "free-space-of-size-0", "size-that-wraps-around"])
def test_a_heap_that_would_never_end_is_called_damaged(recording, tmp_path, case):
    """Each damage is put in the last collection's last text (the events' newest texts) and in the first
    collection's first object (the root attributes' texts, read before anything else)."""
    collections = _collections(recording)
    for which, (at, objects) in {"last": collections[-1], "first": collections[0]}.items():
        obj = objects[-2] if which == "last" else objects[0]  # a text, not the free space after them
        offset, new = {"tester-flip": (obj + 6, b"\xff" * 4),
                       "free-space-of-size-0": (obj, struct.pack("<HHIQ", 0, 0, 0, 0)),
                       "size-that-wraps-around": (obj + 8, struct.pack("<Q", 2**64 - 16))}[case]
        copy = _damaged_copy(recording, tmp_path / which, offset, new)
        done = _inspect(copy)  # before heaps.py: it never ended (the time limit fails the test)
        said = done.stdout + done.stderr
        assert done.returncode == 2, said
        assert DAMAGED in said and f"the heap of texts at byte {at}" in said, said
        assert "Traceback" not in said and "internal error" not in said


def test_a_text_that_spells_the_signature_is_not_taken_for_a_collection(tmp_path):
    """A string holding "GCOL" and a collection header's bytes lies inside a collection, whose bytes are skipped."""
    path = tmp_path / "texts.h5"
    fake = "GCOL\x01\x02\x03\x04" + "\x05" * 8 + "rest of a text"  # taken for a header: a size past the file
    with h5py.File(path, "w", libver=("v110", "v110")) as f:
        f.attrs["note"] = fake
        f.create_dataset("texts", data=np.array([fake, "other"], dtype=h5py.string_dtype()), chunks=(2,))
    with h5py.File(path, "r", locking=False) as h5:
        assert damaged_heap(path, h5) is None
        assert h5.attrs["note"] == fake
