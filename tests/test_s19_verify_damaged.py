"""`verify` on a recording whose superblock was damaged after it was closed and signed.

Fresh tester of issue 12 (seventeenth session): with one byte of the superblock flipped (byte 20) `verify` never
ended (killed by `timeout` after 60 s, and still running at 10 minutes): its look at the file's root attributes
retried as a SWMR reader, which retries metadata whose checksum fails, sleeping between tries. With bytes 9, 20 and 28
flipped it printed "an internal error stopped the command" (h5py's RuntimeError). Each runs in a process of its own
with a time limit, so that the code before fails here instead of hanging the suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_load import scenario_run

from workstation.recording.format import checksum_path, signature_path
from workstation.recording.signature import closed_on_full_disk, session_uuid_of, signature_expected

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    return Path(scenario_run("combined-uneventful", tmp_path_factory.mktemp("verify-damaged")).recording)


def _damaged(src: Path, folder: Path, offsets: tuple[int, ...], sidecars: bool) -> Path:
    folder.mkdir(parents=True)
    for p in (src, checksum_path(src), signature_path(src)) if sidecars else (src,):
        shutil.copy2(p, folder / p.name)
    path = folder / src.name
    data = bytearray(path.read_bytes())
    for at in offsets:
        data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("offsets", [(20,), (9, 20, 28)], ids=["byte-20", "bytes-9-20-28"])
@pytest.mark.parametrize("sidecars", [True, False], ids=["signed", "no-sidecars"])
def test_verify_on_a_damaged_superblock_answers_in_words_at_once(recording, tmp_path, offsets, sidecars):
    path = _damaged(recording, tmp_path / "copy", offsets, sidecars)
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "verify", str(path)], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ), cwd=ROOT)  # before: never ended (byte 20)
    said = done.stdout + done.stderr
    assert "internal error" not in said and "Traceback" not in said and "RuntimeError" not in said, said
    assert done.returncode == 1, said  # not intact
    if sidecars:
        assert "SHA-256 DOES NOT MATCH" in said, said
    else:  # a fresh tester (19th session): it said "the file was not closed by the recorder" of a damaged copy
        assert "not closed by the recorder" not in said and "cannot be read as HDF5" in said, said


def test_verify_on_a_copy_cut_short_without_sidecars_does_not_say_it_was_not_closed(recording, tmp_path):
    path = _damaged(recording, tmp_path / "copy", (), False)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "verify", str(path)], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ), cwd=ROOT)
    said = done.stdout + done.stderr
    assert done.returncode == 1 and "cannot be read as HDF5" in said and "not closed by the recorder" not in said, said


def test_the_root_attribute_looks_say_unreadable_for_a_damaged_file(recording, tmp_path):
    path = _damaged(recording, tmp_path / "copy", (9, 20, 28), True)
    assert signature_expected(path) is True  # it cannot prove it predates signatures
    assert closed_on_full_disk(path) is False
    assert session_uuid_of(path) is None
    assert signature_expected(recording) is True and session_uuid_of(recording) == recording.stem


def _h5_of_another_program(path: Path) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        f["x"] = [1, 2, 3]


@pytest.mark.parametrize("content", ["empty", "text", "random", "hdf5-of-another-program"])
def test_verify_on_a_file_that_is_no_recording_says_so_exit_2(tmp_path, content):
    """Fresh tester of issue 12 (eighteenth session): `verify` on a 0-byte or non-HDF5 `.h5` said "no .sha256 (the
    file was not closed by the recorder)" and exited 1, where `inspect` says it is not a recording (exit 2)."""
    path = tmp_path / "session.h5"
    if content == "hdf5-of-another-program":
        _h5_of_another_program(path)
    else:
        path.write_bytes({"empty": b"", "text": b"patient list\n", "random": os.urandom(4096)}[content])
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "verify", str(path)], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ), cwd=ROOT)
    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert "not a Cicatrix" in said and "not closed by the recorder" not in said and "Traceback" not in said, said
    inspected = subprocess.run([sys.executable, str(ROOT / "main.py"), "inspect", str(path)], capture_output=True,
                               text=True, timeout=120, env=dict(os.environ), cwd=ROOT)
    assert inspected.returncode == 2 and inspected.stderr.strip() == done.stderr.strip()  # one sentence for both


def test_verify_compares_the_bytes_of_a_recording_overwritten_with_text_beside_its_checksum(recording, tmp_path):
    path = _damaged(recording, tmp_path / "copy", (), True)
    path.write_bytes(b"not a recording any more\n")
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "verify", str(path)], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ), cwd=ROOT)
    said = done.stdout + done.stderr
    assert done.returncode == 1 and "SHA-256 DOES NOT MATCH" in said, said  # a tamper alarm, not "not a recording"
