"""A closed, checksummed recording that another program opened for writing and did not close (killed).

Fresh tester of issue 12 (seventeenth session): `h5py.File(p, "a")` in another process, killed, left HDF5's "open for
writing" mark (the superblock's flags and checksum: nothing else changed). `verify` then said "SHA-256 DOES NOT MATCH
… the file changed after it was closed; MODIFIED AFTER SIGNING" (a false tamper alarm), and h5dump refused the file.
Now `verify` and `inspect` clear such a mark when it is all that differs from the bytes the .sha256 was taken of:
the file is again byte for byte as closed, checksummed and signed. Anything else changed besides, or a program still
holding the file: nothing is cleared, and the mismatch stands.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers_load import scenario_run
from helpers_recording import reader_holding

from workstation.checksum import sha256_of
from workstation.recording.format import checksum_path, signature_path
from workstation.recording.mark import open_mark, sha256_unmarked

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    return Path(scenario_run("combined-uneventful", tmp_path_factory.mktemp("foreign-mark")).recording)


def _copy(src: Path, folder: Path) -> Path:
    folder.mkdir(parents=True)
    for p in (src, checksum_path(src), signature_path(src)):
        shutil.copy2(p, folder / p.name)
    return folder / src.name


def _killed_while_open_for_writing(path: Path) -> None:
    """Another program opens the file with h5py in append mode and is killed before it closes it."""
    code = textwrap.dedent(f"""
        import os, signal, h5py
        f = h5py.File({str(path)!r}, "a")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert done.returncode == -9, done.stderr


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ), cwd=ROOT)


@pytest.mark.parametrize("command", ["verify", "inspect"])
def test_a_mark_another_program_left_on_a_checksummed_file_is_cleared_and_the_file_is_intact(recording, tmp_path,
                                                                                              command):
    path = _copy(recording, tmp_path / "copy")
    sealed = sha256_of(path)
    _killed_while_open_for_writing(path)
    assert open_mark(path) and sha256_of(path) != sealed and sha256_unmarked(path) == sealed
    done = _cli(command, str(path))
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert "cleared the \"open for writing\" mark another program left in" in said, said
    assert "DOES NOT MATCH" not in said and "MODIFIED" not in said
    assert not open_mark(path) and sha256_of(path) == sealed  # byte for byte as closed, checksummed and signed
    if command == "verify":
        assert "SHA-256 matches" in said
    if shutil.which("h5dump"):
        assert subprocess.run(["h5dump", "-H", str(path)], capture_output=True, timeout=120).returncode == 0


def test_a_mark_with_anything_else_changed_is_left_and_the_mismatch_stands(recording, tmp_path):
    path = _copy(recording, tmp_path / "copy")
    _killed_while_open_for_writing(path)
    with open(path, "r+b") as f:  # and a byte of the data changed: a real change, not only the mark
        f.seek(path.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x01]))
    marked = sha256_of(path)
    done = _cli("verify", str(path))
    said = done.stdout + done.stderr
    assert done.returncode == 1 and "DOES NOT MATCH" in said and "cleared" not in said, said
    assert open_mark(path) and sha256_of(path) == marked  # left exactly as it was found


def test_a_mark_on_a_file_a_program_still_holds_is_left(recording, tmp_path):
    path = _copy(recording, tmp_path / "copy")
    _killed_while_open_for_writing(path)
    marked = sha256_of(path)
    with reader_holding(path, how="raw"):
        done = _cli("verify", str(path))
    said = done.stdout + done.stderr
    assert "cleared" not in said, said
    assert open_mark(path) and sha256_of(path) == marked


def test_a_checksum_line_naming_another_session_with_this_files_digest_is_said(recording, tmp_path):
    """Fresh tester of issue 12: a .sha256 whose line names another session's file but holds this file's digest got
    "SHA-256 matches" and nothing more (recording-format.md: a .sha256 naming another recording is another file's)."""
    path = _copy(recording, tmp_path / "copy")
    other = "11111111-1111-1111-1111-111111111111.h5"
    checksum_path(path).write_text(f"{sha256_of(path)}  {other}\n", encoding="ascii")
    done = _cli("verify", str(path))
    said = done.stdout + done.stderr
    assert done.returncode == 0, said  # the bytes are the ones checksummed and signed
    assert f"SHA-256 matches (though {checksum_path(path).name} names {other}, another session's file" in said, said
