"""HDF5's "open for writing" mark a killed recorder leaves: found, cleared exactly as `h5clear -s` does (same bytes),
never on a file a process holds or whose checksum was already taken; `inspect` and `verify` clear it when that is
safe. Real files from a real SIGKILL, Debian's h5dump/h5clear where installed (CI installs hdf5-tools)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from helpers_recording import write_session
from test_recording_crash import run_and_kill

from workstation.checksum import sha256_of, write_checksum
from workstation.recording.errors import RecordingError
from workstation.recording.format import checksum_path, signature_path
from workstation.recording.mark import clear_open_mark, held_by_a_process, lookup3, open_mark

REPO = Path(__file__).resolve().parents[1]
needs_tools = pytest.mark.skipif(not (shutil.which("h5clear") and shutil.which("h5dump")),
                                 reason="Debian's hdf5-tools are not installed (CI installs them)")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "main.py"), *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> Path:
    """A recording whose writer was killed mid-session (SIGKILL): it keeps the mark."""
    path, _ = run_and_kill(tmp_path_factory.mktemp("killed"), 0.4)
    return path


@pytest.fixture()
def crashed(killed, tmp_path) -> Path:
    copy = tmp_path / killed.name
    shutil.copy2(killed, copy)
    return copy


def test_lookup3_gives_the_published_values():
    """Bob Jenkins' own test values for hashlittle (lookup3.c, driver5), and HDF5's checksum of a real superblock."""
    assert lookup3(b"") == 0xDEADBEEF
    assert lookup3(b"", 0xDEADBEEF) == 0xBD5B7DDE
    assert lookup3(b"Four score and seven years ago") == 0x17770551
    assert lookup3(b"Four score and seven years ago", 1) == 0xCD628161


def test_a_killed_recorders_file_is_marked_and_a_closed_one_is_not(crashed, tmp_path):
    assert open_mark(crashed)
    with pytest.raises(OSError):  # plain h5py refuses it, as h5dump does
        h5py.File(crashed, "r").close()
    closed = write_session(tmp_path / "closed", 0.2)
    before = closed.read_bytes()
    assert not open_mark(closed) and clear_open_mark(closed) is False
    assert closed.read_bytes() == before


@needs_tools
def test_clearing_gives_the_same_bytes_as_h5clear_and_the_tools_open_it(crashed, tmp_path):
    theirs = tmp_path / "theirs.h5"
    shutil.copy2(crashed, theirs)
    subprocess.run(["h5clear", "-s", str(theirs)], check=True, capture_output=True, timeout=60)
    assert clear_open_mark(crashed) is True and not open_mark(crashed)
    assert crashed.read_bytes() == theirs.read_bytes()
    for tool in (["h5dump", "-H"], ["h5ls", "-r"]):
        out = subprocess.run([*tool, str(crashed)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "h5clear" not in out.stdout + out.stderr, out.stderr


def test_cleared_file_opens_with_plain_h5py_and_keeps_every_row(crashed):
    with h5py.File(crashed, "r", swmr=True, locking=False) as f:
        before = {d: f["devices"][d]["telemetry"][:] for d in ("light", "pen")}
    assert clear_open_mark(crashed)
    with h5py.File(crashed, "r") as f:
        assert "end_time_utc" not in f.attrs
        for d, rows in before.items():
            assert (f["devices"][d]["telemetry"][:] == rows).all()


def test_a_file_a_process_holds_is_never_touched(crashed):
    before = crashed.read_bytes()
    with open(crashed, "rb"):  # any open descriptor (a live writer, a viewer) counts
        assert held_by_a_process(crashed)
        with pytest.raises(RecordingError, match="open in another program"):
            clear_open_mark(crashed)
    assert crashed.read_bytes() == before
    holder = subprocess.Popen([sys.executable, "-c", f"f = open({str(crashed)!r}, 'rb'); import time; "
                               "print('open', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(RecordingError, match="open in another program"):
            clear_open_mark(crashed)
    finally:
        holder.kill()
        holder.wait(10)
    assert crashed.read_bytes() == before and not held_by_a_process(crashed)


def test_a_superblock_that_fails_its_checksum_is_left_alone(crashed):
    data = bytearray(crashed.read_bytes())
    data[30] ^= 0x01  # inside the superblock's addresses
    crashed.write_bytes(bytes(data))
    with pytest.raises(RecordingError, match="does not match its own checksum"):
        clear_open_mark(crashed)
    assert crashed.read_bytes() == bytes(data)


def test_inspect_and_verify_clear_an_unclaimed_mark(killed, tmp_path):
    for command in ("inspect", "verify"):
        copy = tmp_path / command / killed.name
        copy.parent.mkdir()
        shutil.copy2(killed, copy)
        out = cli(command, str(copy))
        assert "cleared the \"open for writing\" mark" in out.stdout, out.stdout + out.stderr
        assert "h5clear" not in out.stdout and not open_mark(copy)
        with h5py.File(copy, "r") as f:
            assert f.attrs["format"] == "cicatrix-session"


def test_a_mark_whose_checksum_was_taken_is_left_alone(killed, tmp_path):
    """Clearing changes bytes: once a SHA-256 was taken of the marked file, clearing would turn it into a false
    tamper alarm, so inspect and verify leave it (and inspect gives the copy-and-h5clear advice instead)."""
    marked = tmp_path / killed.name
    shutil.copy2(killed, marked)
    write_checksum(marked, checksum_path(marked))
    digest = sha256_of(marked)
    for command in ("inspect", "verify"):
        out = cli(command, str(marked))
        assert "cleared" not in out.stdout and open_mark(marked) and sha256_of(marked) == digest, out.stdout
    assert "h5clear -s" in cli("inspect", str(marked)).stdout
    assert not signature_path(marked).exists()


def _refusing_close(reopened: list):
    """In place of writer.open_for_closing: the closing reopen whose close the disk refuses, as HDF5 does on a disk
    filled to the last byte (the file stays open, marked). Its files go into `reopened`, for the test to close."""
    import errno

    def refused_close(path):
        f = h5py.File(path, "r+", libver=("v110", "v110"))
        f.attrs["end_time_utc"] = "2026-12-01T00:00:00Z"  # dirty metadata its close would have written

        def close():
            raise OSError(errno.ENOSPC, "No space left on device")

        f.close = close
        reopened.append(f)
        return f
    return refused_close


def test_a_close_the_full_disk_refused_does_not_leave_the_recorders_file_unreadable(tmp_path, monkeypatch):
    """The recorder reopens the closed SWMR file (`r+`) to add its closing attributes, which sets HDF5's "open for
    writing" mark. On a disk another program fills to the last byte, that reopen's close can fail and left the mark:
    no reader opened the file (1 loaded `make test` run in ~20, tests/test_recording_edges's filler that keeps
    writing). The recorder clears the mark it left, so the file opens, partial, with every row."""
    from helpers_recording import FRAME, ROWS, add_devices, meta

    from workstation.recording import writer
    from workstation.recording.reader import Recording
    from workstation.recording.writer import SessionRecorder

    reopened: list[h5py.File] = []
    monkeypatch.setattr(writer, "open_for_closing", _refusing_close(reopened))
    rec = SessionRecorder.create(tmp_path, meta(), min_free_bytes=0)
    add_devices(rec)
    rec.start()
    rec.on_block("light", ROWS["light"](0, 20 * FRAME, 1000.0))
    with pytest.raises(RecordingError, match="reads as partial"):
        rec.close()
    try:
        code = ("import sys, h5py\n"
                "from workstation.recording.reader import Recording\n"
                "with h5py.File(sys.argv[1], 'r', locking=False) as f: pass\n"  # a plain reader: no mark
                "with Recording.open(sys.argv[1]) as r: print(r.samples('light'), r.partial)\n")
        out = subprocess.run([sys.executable, "-c", code, str(rec.path)], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[1], timeout=60)
        assert out.returncode == 0, out.stderr[-800:]
        assert out.stdout.split() == [str(20 * FRAME), "True"]
        assert not open_mark(rec.path)
    finally:
        for f in reopened:
            h5py.File.close(f)
    with Recording.open(rec.path) as r:
        assert r.samples("light") == 20 * FRAME


def test_a_failed_close_whose_mark_another_program_holds_is_never_checksummed(tmp_path, monkeypatch):
    """The same refused close after a write failure (the disk below the recorder's reserve), with another program
    holding the file (the project's reader, a real process): the recorder cannot clear the mark its reopen left, so
    no .sha256 or .sig is taken of the marked bytes (clearing it later would turn them into a false tamper alarm,
    and a signed file is never cleared), and the session is told why. The bytes it leaves are what `inspect` clears
    once both programs are closed (a copy: this test process keeps the refused reopen, as the recorder does), and
    h5dump then opens them."""
    import errno
    import time

    from helpers_recording import FRAME, ROWS, add_devices, meta, reader_holding

    from workstation.recording import room, writer
    from workstation.recording.writer import SessionRecorder

    reopened: list[h5py.File] = []
    monkeypatch.setattr(writer, "open_for_closing", _refusing_close(reopened))
    rec = SessionRecorder.create(tmp_path / "rec", meta(), min_free_bytes=0, flush_interval_s=0.05)
    add_devices(rec)
    rec.start()
    rec.on_block("light", ROWS["light"](0, 20 * FRAME, 1000.0))
    left = tmp_path / "as-left" / rec.path.name
    left.parent.mkdir()
    try:
        with reader_holding(rec.path):
            def below_reserve() -> None:
                raise room.BelowReserve(errno.ENOSPC, "The disk is nearly full: recording stopped.")

            rec._check_space = below_reserve  # the disk below the reserve at the next flush: a write failure
            rec.on_block("light", ROWS["light"](20 * FRAME, 2 * FRAME, 1000.0))
            deadline = time.monotonic() + 60
            while rec.error is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert rec.error is not None, "the write failure did not happen"
            assert rec.close() is None
            assert open_mark(rec.path) and not checksum_path(rec.path).exists()
            assert not signature_path(rec.path).exists()
            assert "another program holds" in rec.checksum_failure and "inspect" in rec.checksum_failure
        shutil.copy2(rec.path, left)
    finally:
        for f in reopened:
            h5py.File.close(f)
    out = cli("inspect", str(left))
    assert out.returncode == 0 and "cleared the \"open for writing\" mark" in out.stdout, out.stdout + out.stderr
    assert not open_mark(left)
    if shutil.which("h5dump"):
        dumped = subprocess.run(["h5dump", "-H", str(left)], capture_output=True, text=True, timeout=60)
        assert dumped.returncode == 0, dumped.stderr[-800:]
