"""A recording that meets a limit on its own size (this process's `ulimit -f`, RLIMIT_FSIZE; a filesystem's largest
file) stops while it can still be closed whole, as on a full disk; a session is refused at the start where the limit
is below what a session needs; and a reader never fails on a file such a limit cut short.

Fresh tester of issue 12 (nineteenth session): `ulimit -f 8250` and a headless session that passes 8.25 MB. The
devices were stopped ("could not grow (the file reached its size limit, or a disk quota)"), then the runner died on
"an internal error" (h5py's "Can't decrement id ref count (unable to extend file properly, errno = 27)" from
reading the file back), exit 1, no summary; the file had a .sha256 and a .sig that `verify` called intact, but no
tool could open it (8 448 000 of the 8 513 829 bytes its structure said). The window crashed (SIGSEGV) at exit.
A free-space check cannot see this limit: the disk had 59 GB free.

Each case runs in a process of its own under the limit (`resource.setrlimit` before exec), on real files.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workstation.recording import Recording
from workstation.recording.format import checksum_path, signature_path
from workstation.recording.room import SIZE_LIMIT_MARGIN_BYTES, file_size_limit, too_small_a_limit

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
LIMIT_BYTES = SIZE_LIMIT_MARGIN_BYTES + 6 * 2**20  # the recorder stops once the file passes about 6 MB


def _limited(limit_bytes: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.RLIM_INFINITY))
    return apply


RECORD = """
import json, sys, time
sys.path.insert(0, sys.argv[2])
from helpers_recording import add_devices, frames, meta
from workstation.bus import Event, SessionBus
from workstation.recording import SessionRecorder, room, unclosable
from workstation.session.rig import recorded_trip_keys

if sys.argv[3] == "unseen":
    room.SIZE_LIMIT_MARGIN_BYTES = 0  # a limit the recorder does not see coming (as the tester's was, before)
errors = []
rec = SessionRecorder.create(sys.argv[1], meta(), min_free_bytes=0, flush_interval_s=0.05, t0_host_s=1000.0,
                             on_error=errors.append, queue_alarm_rows=10**9)
add_devices(rec)
rec.start()
bus = SessionBus()
bus.subscribe(rec)
k = 0
deadline = time.monotonic() + 120
while not errors and time.monotonic() < deadline:  # 100 frames of both devices a go, about 80 kB
    for dev in ("light", "pen"):
        for block in frames(dev, k, 100):
            bus.publish_block(dev, block)
    bus.publish_event(Event(1000.0 + k * 0.01, "note", "info", "operator", f"frame {k}", {"frame": k}))
    k += 100
    time.sleep(0.02)
sha = rec.close()
keys = recorded_trip_keys(rec.path)  # read back in this process, as the runner does (rig.Closed.of)
print(json.dumps({"path": str(rec.path), "error": str(errors[0]) if errors else None, "sha256": sha,
                  "disk_full": rec.disk_full, "frames": k, "keys": None if keys is None else sorted(keys),
                  "unclosed": rec.unclosed}))
unclosable.exit_if_a_file_is_unclosable(0)  # as the command line's entry does
"""


def _record(tmp_path: Path, mode: str = "seen", limit_bytes: int = LIMIT_BYTES) -> dict:
    done = subprocess.run([sys.executable, "-c", RECORD, str(tmp_path), str(TESTS), mode], capture_output=True,
                          text=True, timeout=300, preexec_fn=_limited(limit_bytes), cwd=ROOT)
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])  # before: SIGSEGV, or the close failed
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_recording_stops_before_its_file_size_limit_and_closes_whole(tmp_path):
    said = _record(tmp_path)
    assert said["error"] is not None, said  # it stopped (the loop ran until the recorder said so)
    assert "largest file this program's file size limit (ulimit -f) allows" in said["error"], said
    assert "recording stopped while the file can still be closed" in said["error"]
    assert said["disk_full"] is True  # the session's end is a full disk's: exit 3 with its summary
    assert said["keys"] == []  # read back whole (the synthetic session has no trips)
    path = Path(said["path"])
    assert path.stat().st_size < LIMIT_BYTES
    assert said["sha256"] is not None and checksum_path(path).is_file() and signature_path(path).is_file()
    with Recording.open(path) as rec:  # whole: every row written up to the stop, the closing attributes in it
        assert rec.meta.end_time_utc is not None
        assert rec.samples("light") > 0 and rec.samples("pen") > 0
        assert "size limit" in (rec.partial_reason or "")
    h5dump = shutil.which("h5dump")
    if h5dump is not None:  # Debian's HDF5 1.10 reads it (CI installs hdf5-tools)
        assert subprocess.run([h5dump, "-H", str(path)], capture_output=True, timeout=120).returncode == 0


def test_verify_and_inspect_agree_the_stopped_file_is_intact(tmp_path):
    path = Path(_record(tmp_path)["path"])
    env = {**os.environ, "HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "data")}
    verified = subprocess.run([sys.executable, str(ROOT / "main.py"), "verify", str(path)], capture_output=True,
                              text=True, timeout=120, env=env, cwd=ROOT)
    assert "SHA-256 matches" in verified.stdout, verified.stdout + verified.stderr
    inspected = subprocess.run([sys.executable, str(ROOT / "main.py"), "inspect", str(path)], capture_output=True,
                               text=True, timeout=120, env=env, cwd=ROOT)
    assert inspected.returncode == 0 and "truncated" not in inspected.stdout, inspected.stdout + inspected.stderr


def test_a_headless_session_under_a_small_file_size_limit_is_refused_at_the_start_in_words(tmp_path):
    """A limit below what a session needs refuses the session before any device is armed (as a disk with too little
    free space does), naming the limit; nothing is left in the recordings folder."""
    env = {**os.environ, "HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_STATE_HOME": str(tmp_path / "state")}
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "session", "--simulate", "--scenario",
                           str(ROOT / "seeds" / "scenarios" / "combined-uneventful.toml"), "--record",
                           str(tmp_path / "rec")], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
                          preexec_fn=_limited(8250 * 1024))
    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert "this program's file size limit (ulimit -f) allows is 8,250 kB" in said, said
    assert "internal error" not in said and "Traceback" not in said and "File too large" not in said, said
    assert not list((tmp_path / "rec").rglob("*.h5"))


def test_the_limit_is_read_from_the_process_and_the_filesystem(tmp_path):
    assert file_size_limit(tmp_path) is None or file_size_limit(tmp_path)[0] > 2**30  # this machine: no limit
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (50 * 2**20, hard))
        assert file_size_limit(tmp_path) == (50 * 2**20, "this program's file size limit (ulimit -f)")
        assert too_small_a_limit(tmp_path, 600 * 2**20).startswith("The largest file this program's file size")
        assert too_small_a_limit(tmp_path, 10 * 2**20) is None
        resource.setrlimit(resource.RLIMIT_FSIZE, (614_399 * 2**10, hard))  # 1 kB short of 600 MB (fresh tester)
        assert "allows is 614,399 kB; a session's recording needs room to grow to 600 MB" in \
            too_small_a_limit(tmp_path, 600 * 2**20)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.parametrize("cut", [64_000, 2_000_000])
def test_a_reader_of_a_file_cut_short_says_so_and_never_raises_h5pys_words(tmp_path, cut):
    """A closed recording cut short (as the size limit cut the tester's): inspect says truncated (exit 2), and the
    runner's read-back (rig.recorded_trip_keys) returns None, never an error."""
    from helpers_recording import write_session

    from workstation.session.rig import recorded_trip_keys

    path = write_session(tmp_path / "src", 8.0)
    data = path.read_bytes()
    short = tmp_path / "short.h5"
    short.write_bytes(data[:len(data) - cut])
    assert recorded_trip_keys(short) in (None, frozenset())
    env = {**os.environ, "HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "data")}
    inspected = subprocess.run([sys.executable, str(ROOT / "main.py"), "inspect", str(short)], capture_output=True,
                               text=True, timeout=120, env=env, cwd=ROOT)
    said = inspected.stdout + inspected.stderr
    assert inspected.returncode in (0, 2) and "Traceback" not in said and "internal error" not in said, said


def test_a_write_past_an_unseen_limit_leaves_a_process_that_reads_back_and_exits_cleanly(tmp_path):
    """The backstop, for a limit the recorder does not see coming (its margin made 0 here): the write fails with
    EFBIG mid-file, the writer cannot close the file, and reading it back in the same process (HDF5 shares the file
    its writer could not close) raised h5py's "Can't decrement id ref count" from the reader's close, out of the
    runner ("an internal error"), or the process crashed (SIGSEGV). Now the read-back gives an answer and the
    process ends with its own status."""
    said = _record(tmp_path, "unseen", 20 * 2**20)
    assert said["error"] is not None and "File too large" not in said["error"], said
    # a fresh tester (19th session): a size limit was called "the disk stayed full" with 57 GB free
    assert said["unclosed"] is None or ("could not grow" in said["unclosed"] and "stayed full" not in said["unclosed"])


def test_verify_never_calls_intact_a_file_that_inspect_cannot_open(tmp_path):
    """A third fresh tester (nineteenth session): a size limit set below the file mid-session left a file that was
    checksummed and signed as it was; `verify` said "intact" (exit 0) while inspect, audit and report called it
    damaged. verify now opens the file too: unchanged bytes no tool can read are not intact."""
    path = Path(_record(tmp_path, "unseen", 20 * 2**20)["path"])
    run = [sys.executable, str(ROOT / "main.py")]
    verified = subprocess.run([*run, "verify", str(path)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    inspected = subprocess.run([*run, "inspect", str(path)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    said = verified.stdout + verified.stderr + inspected.stdout + inspected.stderr
    assert (verified.returncode == 0) == (inspected.returncode == 0), said
    if inspected.returncode != 0:
        assert "FAIL  file:" in verified.stdout and inspected.stderr.strip().removeprefix("error: ") in verified.stdout
