"""Crash safety: a process recording a simulated session is killed (SIGKILL) at random moments; every sample up to
the last flush it reported must be in the file, intact, and the file must open with plain h5py and with Recording."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
from helpers_recording import check_rows

from workstation.recording.reader import Recording

HELPER = Path(__file__).with_name("helpers_recording.py")
ROOT = Path(__file__).resolve().parents[1]


def run_and_kill(directory: Path, delay_s: float) -> tuple[Path, dict[str, int]]:
    proc = subprocess.Popen([sys.executable, str(HELPER), str(directory)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    path = None
    flushed = {"light": 0, "pen": 0}
    deadline = None
    try:
        for line in proc.stdout:
            words = line.split()
            if words[0] == "path":
                path = Path(words[1])
                deadline = time.monotonic() + delay_s
            elif words[0] == "flushed":
                flushed = {"light": int(words[1]), "pen": int(words[2])}
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert path is not None and proc.returncode == -signal.SIGKILL
    return path, flushed


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_flushed(tmp_path):
    rng = random.Random(20261123)
    for trial in range(6):
        path, flushed = run_and_kill(tmp_path / f"run{trial}", rng.uniform(0.15, 1.2))
        # plain h5py: a file left open by a SWMR writer is read in SWMR mode
        with h5py.File(path, "r", libver="latest", swmr=True) as f:
            assert f.attrs["format"] == "cicatrix-session" and "end_time_utc" not in f.attrs
            for dev in ("light", "pen"):
                rows = f["devices"][dev]["telemetry"][:]
                assert len(rows) >= flushed[dev], (trial, dev, len(rows), flushed[dev])
                check_rows(dev, rows)
            events = f["events"][:]
            assert len(events) >= 1
            for i, e in enumerate(events):  # one note every 25 frames, in order, text intact
                assert e["message"].decode() == f"Frame {25 * i}: note é ü 漢字." and e["t_host_s"] == pytest.approx(1000 + 0.25 * i)
        with Recording.open(path) as rec:
            assert rec.partial and "did not close" in rec.partial_reason
            assert rec.samples("light") >= flushed["light"] and rec.samples("light") > 0
            check_rows("pen", rec.telemetry("pen"))
            assert [e.details["frame"] for e in rec.events] == [25 * i for i in range(len(rec.events))]


def test_a_live_recording_and_a_killed_ones_are_told_apart(tmp_path):
    """Fresh tester of issue 12: every unclosed file was "still being recorded, or the process stopped". A file
    another process is writing now says it is being recorded; the same file once that process is killed says its
    writer stopped, and how to open it in other tools."""
    proc = subprocess.Popen([sys.executable, str(HELPER), str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    path = None
    try:
        for line in proc.stdout:
            words = line.split()
            if words[0] == "path":
                path = Path(words[1])
            elif words[0] == "flushed" and int(words[1]) > 0:
                break
        assert path is not None
        with Recording.open(path) as rec:
            assert rec.partial and "being recorded now" in rec.partial_reason and "crash" not in rec.partial_reason
        verify = subprocess.run([sys.executable, str(ROOT / "main.py"), "verify", str(path)], capture_output=True,
                                text=True, timeout=120, cwd=ROOT)
        assert verify.returncode == 2 and "being recorded now" in verify.stderr, verify.stderr
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with Recording.open(path) as rec:
        assert rec.partial and "no program on this computer has it open" in rec.partial_reason
        assert "stopped (crash, kill, power loss)" in rec.partial_reason and "h5clear -s" in rec.partial_reason


def test_following_a_live_recording_never_fails_and_loses_no_row(tmp_path):
    """Fresh tester of issue 12: following a live file (refresh every 0.2 s) failed after about 2.6 s with "address
    of object past end of allocation" on its text tables, and the reader called the healthy file damaged. The
    newest text rows of a live file may not be readable yet (HDF5's global heap under SWMR): the reader leaves them
    out and says so, never fails, and once the writer has stopped every row is read."""
    proc = subprocess.Popen([sys.executable, str(HELPER), str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    path = Path(proc.stdout.readline().split()[1])
    seen_events, seen_unreadable = 0, 0
    try:
        with Recording.open(path) as rec:
            deadline = time.monotonic() + 4.0
            while time.monotonic() < deadline:
                rec.refresh()  # never raises
                seen_events = max(seen_events, len(rec.events))
                if rec.unreadable_live_rows:
                    seen_unreadable += 1
                    assert "cannot be read while it is being recorded" in rec.partial_reason
                rows = [e.details["frame"] for e in rec.events]
                assert rows == sorted(rows)  # what is read is whole and in order
                time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with Recording.open(path) as rec:  # the writer gone: every row it wrote reads
        assert rec.unreadable_live_rows == 0 and len(rec.events) >= seen_events and len(rec.events) > 0
        assert [e.details["frame"] for e in rec.events] == [25 * i for i in range(len(rec.events))]


def test_a_live_file_replaced_while_followed_is_said_in_words(tmp_path):
    """A reader following a live file opens it afresh when its newest rows cannot be read (Recording._reopen). If
    the file was moved or replaced meanwhile, that fresh open fails with a RecordingError in words, not the library's
    OSError on a handle already closed."""
    from workstation.recording import RecordingError

    proc = subprocess.Popen([sys.executable, str(HELPER), str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    path = Path(proc.stdout.readline().split()[1])
    try:
        with Recording.open(path) as rec:
            rec.refresh()
            junk = tmp_path / "junk.h5"
            junk.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 4096)  # an HDF5 signature and nothing sound behind it
            os.replace(junk, path)
            with pytest.raises(RecordingError) as err:
                rec._reopen()
            assert str(path) in str(err.value) and "Errno" not in str(err.value), err.value
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
