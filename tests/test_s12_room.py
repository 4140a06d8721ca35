"""A disk another program keeps filling while the session records (a fresh tester of issue 12: `dd` to the last byte
on a tmpfs): the recorder stops before HDF5 meets the full disk, and its close, closing attributes and last trip go
into the room the file held past its end (workstation/recording/room.py), whatever the filler takes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import pytest
from helpers_recording import assert_in_words
from test_recording_edges import small_disk

from workstation.recording import Recording, room
from workstation.recording import format as fmt

TESTS = Path(__file__).resolve().parent

RACE = textwrap.dedent("""
    import json, os, subprocess, sys, threading, time
    sys.path.insert(0, sys.argv[2])
    import helpers_recording as h
    from workstation.bus import Event
    from workstation.recording.unclosable import exit_if_a_file_is_unclosable
    disk = sys.argv[1]
    from pathlib import Path
    from workstation.logsetup import configure_logging
    configure_logging(Path(sys.argv[4]), command="race")  # as main.py does: library errors to the log file
    if sys.argv[3] == "no room":  # a filesystem that cannot hold room past a file's end (ext4 without extents)
        import workstation.recording.room as room
        room._FALLOCATE = None
    got = threading.Event()
    errors = []
    rec = h.SessionRecorder.create(disk, h.meta(), min_free_bytes=0, reserve_bytes=2**20, t0_host_s=1000.0,
                                   on_error=lambda e: (errors.append(str(e)), got.set()))
    h.add_devices(rec)
    rec.start()
    # another program filling the disk to the last byte, then taking every byte that comes free, as `dd` racing the
    # recorder (a process of its own: a thread of this one would wait for the recorder's GIL)
    FILL = ("import sys, time\\n"
            "f = open(sys.argv[1], 'wb', buffering=0)\\n"
            "while True:\\n"
            "    try:\\n"
            "        f.write(bytes(65536))\\n"
            "    except OSError:\\n"
            "        try:\\n"
            "            f.write(bytes(4096))\\n"
            "        except OSError:\\n"
            "            time.sleep(0.0001)\\n")
    k = 0
    while k < 200:  # some telemetry in the file first
        for dev in ("light", "pen"):
            rec.on_block(dev, h.frames(dev, k, 1)[0])
        k += 1
    time.sleep(0.6)
    filler = subprocess.Popen([sys.executable, "-c", FILL, os.path.join(disk, "filler")])
    while not got.is_set() and k < 100000:
        for dev in ("light", "pen"):
            rec.on_block(dev, h.frames(dev, k, 1)[0])
        k += 1
        time.sleep(0.001)
    # the E-stop the failure causes, published after it (the session's interlock): into the closing reopen
    rec.on_event(Event(1000.0 + k * 0.01, "interlock", "high", "safety", "E-stop interlock on the UV light",
                       {"interlock": "estop", "device": "light"}))
    sha = rec.close()
    free_at_close = os.statvfs(disk).f_bavail
    filler.kill()
    filler.wait()
    print(json.dumps({"error": errors[0] if errors else None, "path": str(rec.path), "sha": sha,
                      "signature_failure": rec.signature_failure, "free_blocks_at_close": free_at_close,
                      "unclosed": rec.unclosed}), flush=True)
    exit_if_a_file_is_unclosable(0)
""")


def _race(disk: Path, logs: Path, room_past_the_end: str = "room") -> dict:
    # a group of its own: the filler it starts ends with it, whatever happens (a filler left running fills the next
    # test's disk)
    proc = subprocess.Popen([sys.executable, "-c", RACE, str(disk), str(TESTS), room_past_the_end, str(logs)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=180)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == 0, f"exit {proc.returncode} (a segfault is -11): {err[-2000:]}"
    assert "Traceback" not in err, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


def test_a_filler_that_takes_every_freed_byte_cannot_keep_the_close_or_the_last_trip_out_of_the_file(tmp_path):
    with small_disk("48m") as disk:
        probe = disk / "probe"
        with open(probe, "wb") as f:
            if not room.hold(f.fileno(), 4096):
                pytest.skip("this filesystem cannot hold room past a file's end")
        probe.unlink()
        result = _race(disk, tmp_path)
        assert result["error"] and "full" in result["error"], result
        assert_in_words(result["error"])
        path = Path(result["path"])
        with h5py.File(path, "r") as f:  # plain h5py: closed, with its closing attributes, on a full disk
            assert "end_time_utc" in f.attrs and not f.attrs["closed_cleanly"] and f.attrs["closed_on_full_disk"]
        with Recording.open(path) as r:
            assert r.partial and "full" in r.partial_reason
            assert any(e.kind == "interlock" and e.details.get("interlock") == "estop" for e in r.events), \
                [e.message for e in r.events][-5:]
            assert r.samples("light") >= 200 * 4
        # nothing of the recorder's left: no ballast, no temporary file; the room past the end given back
        assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".")) == []
        assert os.stat(path).st_blocks * 512 < os.path.getsize(path) + 2**20
        # the checksum always: the ballast's bytes, kept, became it (written over in place)
        assert fmt.checksum_path(path).read_text().split() == [result["sha"], path.name]
        # the signature if the filler left room for it; if not, why, in words, and the file says it closed on a full
        # disk, which inspect gives as the likely cause
        if not fmt.signature_path(path).exists():
            assert result["signature_failure"] == "no signature could be written beside the file: the disk is full"
            shown = subprocess.run([sys.executable, str(TESTS.parent / "main.py"), "inspect", str(path)],
                                   capture_output=True, text=True, timeout=120)
            assert "closed it on a full disk (the file says so)" in shown.stdout, shown.stdout + shown.stderr


def test_room_is_held_past_the_end_without_changing_the_file_and_given_back(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 5000)
    with open(path, "r+b") as f:
        if not room.hold(f.fileno(), 2**20):
            pytest.skip("this filesystem cannot hold room past a file's end")
    assert path.read_bytes() == b"x" * 5000  # its size and its bytes: the SHA-256 and every reader see the same
    assert os.stat(path).st_blocks * 512 >= 2**20
    room.give_back(path)
    assert path.read_bytes() == b"x" * 5000 and os.stat(path).st_blocks * 512 < 64 * 1024


def test_holding_room_on_a_full_disk_says_so_and_keeps_what_was_held():
    with small_disk("4m") as disk:
        path = disk / "f"
        with open(path, "wb") as f:
            if not room.hold(f.fileno(), 2**20):
                pytest.skip("this filesystem cannot hold room past a file's end")
            with pytest.raises(OSError) as raised:
                room.hold(f.fileno(), 16 * 2**20)
            assert raised.value.errno == 28  # ENOSPC: the recorder's "the disk is full"
            assert os.stat(path).st_blocks * 512 >= 2**20  # the room held before is still held


@pytest.mark.parametrize("left", ["checksum only", "neither"])
def test_a_missing_signature_of_a_file_closed_on_a_full_disk_names_the_full_disk(tmp_path, left):
    """Not "a crash, a kill or a power cut" (the words before): the file says its session closed it on a full disk."""
    from helpers_recording import write_session

    from workstation.checksum import write_checksum
    from workstation.recording.summary import check_checksum

    path = write_session(tmp_path, 1.0)
    with h5py.File(path, "r+") as f:
        assert not f.attrs["closed_on_full_disk"]  # a session that closed cleanly says so
        f.attrs["closed_on_full_disk"] = True  # as the recorder writes it after a full disk
    fmt.signature_path(path).unlink()
    if left == "checksum only":
        write_checksum(path, fmt.checksum_path(path))
    else:
        fmt.checksum_path(path).unlink()
    check = check_checksum(path)
    assert check.intact is not True and "SIGNATURE MISSING" in check.text
    assert "its session closed it on a full disk (the file says so), so most likely there was no room left" in \
        check.text, check.text
    assert_in_words(check.text)


def test_without_room_past_the_end_the_checksum_is_still_written_and_a_close_the_disk_refused_is_said(tmp_path):
    """A filesystem that cannot hold room past a file's end (a fresh tester of issue 12: ext4 without extents): the
    ballast is the only reserve, and the filler takes what it gives back. The .sha256 is still written (the ballast
    keeps its room: never "not closed by the recorder" for a file it closed); if the closing attributes found no room,
    the recorder says in words that the E-stop and trips are in the log file, not in the recording. No traceback on
    the terminal, no crash at exit (h5py's errors freeing the objects of the failed file go to the log file)."""
    with small_disk("48m") as disk:
        result = _race(disk, tmp_path, "no room")
        assert result["error"] and "full" in result["error"], result
        path = Path(result["path"])
        assert result["sha"] is not None and fmt.checksum_path(path).read_text().split() == [result["sha"], path.name]
        # Never reopened for the closing attributes without held room after a full disk: a reopen the filler starves
        # half-way left the file damaged (a part of it unreadable), where not reopening leaves it partial. Said.
        assert result["unclosed"] == ("the disk stayed full, so the file could not take its closing attributes: "
                                      "what the session did after the failure (its E-stop and trips), and what it "
                                      "did just before it that the failed write had not taken yet, is in the log "
                                      "file, not in the recording")
        with Recording.open(path) as r:  # readable, partial, with what it had
            assert r.partial and r.meta.end_time_utc is None and r.samples("light") >= 200 * 4
        assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize(("source", "said"), [("recording failed", "E-stop (recording failed)"),
                                              ("store failed", "E-stop (store failed)"),
                                              ("STOP button", "E-stop (STOP button)")])
def test_inspect_names_who_made_an_estop_never_a_press_it_was_not(tmp_path, source, said):
    """A fresh tester of issue 12: inspect said "cause: STOP was pressed" of the E-stop the recorder's failure made."""
    from helpers_recording import write_session

    from workstation.bus import Event
    from workstation.recording.summary import format_summary, summarize

    trip = Event(1000.5, "interlock", "high", "safety", f"E-stop interlock on the UV light: E-stop ({source})",
                 {"interlock": "estop", "cause": "estop", "device": "light", "source": source, "latency_ms": 0.1})
    path = write_session(tmp_path, 1.0, events=[trip])
    with Recording.open(path) as r:
        text = format_summary(r, summarize(r))
    (line,) = [t for t in text.splitlines() if "E-stop interlock on the UV light" in t and "(cause: " in t]
    assert f"(cause: {said}, latency 0.1 ms)" in line, line
    assert "STOP was pressed" not in text
