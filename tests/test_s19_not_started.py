"""A disk that fills between the recording's creation and its start (a fresh tester of issue 12, seventeenth
session: the runner stopped right after the file appeared, the disk filled, then it went on): "an internal error",
then SIGSEGV at exit, a damaged 13 kB file and an 8 MB reserve left behind. Now the start says so in words (exit 3),
nothing is freed that HDF5 could not close, and the file that holds no session yet is removed with its reserve.
The recorder runs in a process of its own: HDF5 may crash freeing a file it could not write, and it is ended as the
command line ends it (unclosable.exit_if_a_file_is_unclosable)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from test_recording_edges import small_disk

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import errno, sys
    from pathlib import Path
    sys.path.insert(0, "tests")
    from helpers_recording import add_devices, meta
    from workstation.recording import SessionRecorder
    from workstation.recording.errors import RecordingNotStarted
    from workstation.recording.unclosable import exit_if_a_file_is_unclosable

    folder = Path(sys.argv[1])
    rec = SessionRecorder.create(folder, meta(), min_free_bytes=0)
    add_devices(rec)
    print("created", rec.path, flush=True)
    with open(folder / "filler", "wb", buffering=0) as f:  # another program takes every byte left
        for size in (2**20, 2**12, 1):
            try:
                while True:
                    f.write(b"x" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    try:
        rec.start()
    except RecordingNotStarted as exc:
        print("refused:", exc, flush=True)
        exit_if_a_file_is_unclosable(exc.exit_code)
    print("started", flush=True)
""")


def test_a_recording_the_full_disk_refuses_at_its_start_is_refused_in_words_and_leaves_nothing():
    with small_disk("16m") as d:
        done = subprocess.run([sys.executable, "-c", SCRIPT, d], capture_output=True, text=True, timeout=300,
                              env=dict(os.environ), cwd=ROOT)
        said = done.stdout + done.stderr
        assert done.returncode == 3, said  # before: RuntimeError "Unable to synchronously flush file", SIGSEGV at exit
        assert "could not be started: the disk is full, so the session did not start and nothing was given" in said
        assert "Traceback" not in said and "Unable to" not in said, said
        left = sorted(str(p.relative_to(d)) for p in Path(d).rglob("*") if p.is_file())
        assert left == ["filler"], left  # no damaged recording, no reserve (the day's folder stays, empty)
