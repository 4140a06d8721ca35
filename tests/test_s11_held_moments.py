"""A recording read while a program is writing it is "in use", never "truncated", "damaged" or "not HDF5"; and the
moments its own session holds it without SWMR (created, not yet recording; reopened for its closing attributes)
are said as such, not as "another program".

Second fresh tester of the tenth session: `Recording.open` in the first ~10 ms of a file's creation said
"truncated". Real files, real holders (this process's recorder, or another process that opened the file for
writing), read by `Recording.open` and by `main.py inspect` in a subprocess."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers_recording import add_devices, meta, write_session

from workstation.recording import Recording, RecordingError, SessionRecorder, room
from workstation.recording import format as fmt
from workstation.recording import writer as writer_module
from workstation.recording.reader import in_use_error
from workstation.recording.writer import BALLAST_BYTES

ROOT = Path(__file__).resolve().parents[1]
WRONG = ("is a damaged", "is truncated", "not an HDF5", "another program", "Traceback")
OWN_HOLD = "is being created or closed by its session on this computer at this moment"


def _inspect(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "inspect", str(path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def test_a_recording_being_created_is_said_to_be_so_by_inspect(tmp_path: Path) -> None:
    """Created and its devices declared, not yet switched to SWMR (HDF5's lock held, the file not flushed)."""
    rec = SessionRecorder.create(tmp_path, meta(), min_free_bytes=0)
    add_devices(rec)
    try:
        done = _inspect(rec.path)
    finally:
        rec.start()
        rec.close()
    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert OWN_HOLD in said, said
    assert not any(w in said for w in WRONG), said
    assert not fmt.ballast_path(rec.path).exists()  # the ballast ends with the close
    assert _inspect(rec.path).returncode == 0  # and the file is whole


def test_the_closing_reopen_is_the_sessions_own_hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the closing attributes are added (the file open for writing, no longer SWMR) a reader is told the
    session is closing it. The ballast is there: whole where the file held room past its end for the close (it then
    becomes the checksum file), given back to the disk first (its file kept, empty) where it could hold none."""
    seen: list[tuple[bool, int, str]] = []
    real = writer_module.open_for_closing

    def looking(path: Path):
        h5 = real(path)
        ballast = fmt.ballast_path(path)
        seen.append((ballast.exists(), ballast.stat().st_size if ballast.exists() else -1, str(in_use_error(path))))
        return h5

    monkeypatch.setattr(writer_module, "open_for_closing", looking)
    path = write_session(tmp_path, 1.0)
    probe = tmp_path / "probe"
    with open(probe, "wb") as f:
        holds_room = room.hold(f.fileno(), 4096)
    assert seen and seen[0][:2] == (True, BALLAST_BYTES if holds_room else 0), seen
    assert OWN_HOLD in seen[0][2], seen
    assert not fmt.ballast_path(path).exists()
    assert fmt.checksum_path(path).read_text().split()[1] == path.name
    assert Recording.open(path).meta.end_time_utc is not None


@pytest.mark.parametrize("cut", ["half", "head"])
def test_a_file_another_program_is_writing_reads_as_in_use_whatever_its_bytes_look_like(tmp_path: Path,
                                                                                     cut: str) -> None:
    """Cut to half its bytes (h5py: "truncated file") or with its first 4 kB not written yet (not HDF5 at all) while
    another process has it open for writing: in use; once that process has gone, what the bytes are."""
    whole = write_session(tmp_path / "w", 1.0)
    path = tmp_path / "copy.h5"
    shutil.copyfile(whole, path)
    data = bytearray(path.read_bytes())
    if cut == "half":
        path.write_bytes(bytes(data[: len(data) // 2]))
    else:
        data[:4096] = bytes(4096)
        path.write_bytes(bytes(data))
    holder = subprocess.Popen([sys.executable, "-c", "import sys; f = open(sys.argv[1], 'r+b'); sys.stdin.read()",
                               str(path)], stdin=subprocess.PIPE, text=True)
    try:
        _wait_held(path)
        with pytest.raises(RecordingError) as held:
            Recording.open(path)
    finally:
        holder.communicate("", timeout=30)
    assert "is in use by another program that has it open for writing" in str(held.value), held.value
    assert not any(w in str(held.value) for w in WRONG[:3]), held.value
    with pytest.raises(RecordingError) as after:
        Recording.open(path)
    assert ("is truncated" if cut == "half" else "is not an HDF5 file") in str(after.value), after.value


def _wait_held(path: Path) -> None:
    from workstation.recording.mark import held_by_a_process

    for _ in range(3000):
        if held_by_a_process(path, for_writing=True):
            return
        time.sleep(0.01)
    raise AssertionError(f"{path} was never held")
