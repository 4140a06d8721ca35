"""A program that opens the closed recording for writing in the instant between the recorder's close and its
reopen for the closing attributes (tenth session's fresh tester: `h5py.File(path, "a")` in a 5 ms loop got it; the
close then said "it reads as partial" and blamed a reader). The reopen waits for it to let go; if it does not, the
close says so in words, and the file is neither signed nor changed by the recorder."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import h5py
import pytest
from helpers_recording import add_devices, assert_in_words, frames, meta

from workstation.recording import Recording, RecordingError, SessionRecorder, writer
from workstation.recording import format as fmt

ROOT = Path(__file__).resolve().parents[1]

HOLD = textwrap.dedent("""
    import sys, time
    import h5py
    held = h5py.File(sys.argv[1], "a", locking=sys.argv[2] == "locked")
    print("open", flush=True)
    sys.stdin.readline()
    held.close()
    print("closed", flush=True)
""")


@contextlib.contextmanager
def holder(path: Path, locked: bool):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), "locked" if locked else "unlocked"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "open"
        yield proc
    finally:
        if proc.poll() is None:
            proc.stdin.write("\n")
            proc.stdin.flush()
            proc.wait(20)


def _recorder(tmp_path: Path) -> SessionRecorder:
    rec = SessionRecorder.create(tmp_path, meta(), min_free_bytes=0, t0_host_s=1000.0, flush_interval_s=0.05)
    add_devices(rec)
    rec.start()
    for k in range(20):
        rec.on_block("light", frames("light", k, 1)[0])
    return rec


@pytest.mark.parametrize("locked", [True, False], ids=["with-hdf5-lock", "locking-off"])
def test_a_writer_that_lets_go_is_waited_for_and_the_recording_closes_signed(tmp_path, monkeypatch, locked):
    rec = _recorder(tmp_path)
    real = writer.open_for_closing
    procs = []

    def grabbed_first(path: Path):  # the other program opens the file just before the reopen
        cm = holder(path, locked)
        procs.append((cm, cm.__enter__()))
        proc = procs[-1][1]

        def let_go() -> None:
            proc.stdin.write("\n")
            proc.stdin.flush()

        threading.Timer(0.5, let_go).start()  # it lets go half a second later: the reopen finds it held and waits
        return real(path, wait_s=20.0)

    monkeypatch.setattr(writer, "open_for_closing", grabbed_first)
    sha = rec.close()
    for cm, proc in procs:
        assert proc.stdout.readline().strip() == "closed"  # it had the file until it let go
        cm.__exit__(None, None, None)
    assert sha and fmt.checksum_path(rec.path).read_text().split()[0] == sha
    with Recording.open(rec.path) as r:
        assert not r.partial and r.samples("light") == 400


@pytest.mark.parametrize("locked", [True, False], ids=["with-hdf5-lock", "locking-off"])
def test_a_writer_that_keeps_it_is_named_and_nothing_is_signed(tmp_path, monkeypatch, locked):
    rec = _recorder(tmp_path)
    real = writer.open_for_closing
    held = []

    def grabbed_first(path: Path):
        cm = holder(path, locked)
        cm.__enter__()
        held.append(cm)
        return real(path, wait_s=0.5)

    monkeypatch.setattr(writer, "open_for_closing", grabbed_first)
    try:
        with pytest.raises(RecordingError) as caught:
            rec.close()
    finally:
        for cm in held:
            cm.__exit__(None, None, None)
    words = str(caught.value)
    assert "Another program kept the recording" in words and "open for writing" in words, words
    assert "reader" not in words
    assert_in_words(words)
    assert not fmt.checksum_path(rec.path).exists() and not fmt.signature_path(rec.path).exists()
    with h5py.File(rec.path, "r", locking=False) as f:  # the recorder added nothing after the other program
        assert "end_time_utc" not in f.attrs
