"""What happens around a recording: other processes reading it while the session closes, another program holding
it open, publishers racing the close, the host clock of every row, and a disk that fills to the last byte (a real
small tmpfs when the tests run as root, as in CI)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers_recording import add_devices, assert_in_words, check_rows, frames, meta, write_session

from workstation.bus import Event, SessionBus, now_s
from workstation.recording import Recording, RecordingError, SessionRecorder
from workstation.recording import format as fmt

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
T0 = 1000.0


def _live(tmp_path: Path, **kwargs) -> SessionRecorder:
    rec = SessionRecorder.create(tmp_path, meta(), min_free_bytes=0, t0_host_s=T0, flush_interval_s=0.05, **kwargs)
    add_devices(rec)
    rec.start()
    for k in range(20):
        rec.on_block("light", frames("light", k, 1)[0])
    deadline = time.monotonic() + 5
    while rec.stats.rows_written["light"] < 400 and time.monotonic() < deadline:
        time.sleep(0.01)
    return rec


HOLD = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[3])
    import h5py
    from workstation.recording import Recording
    if sys.argv[2] == "project":
        held = Recording.open(sys.argv[1])
    elif sys.argv[2] == "swmr":  # a plain h5py SWMR reader with HDF5's default file locking, like HDFView
        held = h5py.File(sys.argv[1], "r", swmr=True)
    elif sys.argv[2] == "append-unlocked":  # the same with HDF5's file locking off (HDF5_USE_FILE_LOCKING=FALSE)
        held = h5py.File(sys.argv[1], "a", locking=False)
    else:  # another program with the file open for writing, not as SWMR
        held = h5py.File(sys.argv[1], "a")
    print("open", flush=True)
    sys.stdin.read()
""")


@contextlib.contextmanager
def held_open(path: Path, how: str):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), how, str(ROOT)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "open"
        yield proc
    finally:
        if proc.poll() is None:
            proc.stdin.close()
            proc.wait(10)


# --- item 2: readers never block the writer ------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["project", "swmr"])
def test_a_reader_in_another_process_does_not_break_the_close(tmp_path, how):
    rec = _live(tmp_path)
    with held_open(rec.path, how):
        sha = rec.close()  # issue: "[Errno 11] unable to lock file", no checksum, the file left partial
    assert sha and fmt.checksum_path(rec.path).read_text().split()[0] == sha
    with Recording.open(rec.path) as r:
        assert not r.partial and r.samples("light") == 400
    with h5py.File(rec.path, "r") as f:
        assert f.attrs["closed_cleanly"] and "end_time_utc" in f.attrs


@pytest.mark.parametrize("how", ["append", "append-unlocked"])
def test_a_file_another_program_holds_for_writing_is_in_use_not_damaged(tmp_path, capsys, how):
    """With HDF5's lock, and without it (fresh tester of issue 12: a holder with locking off, as the format page
    tells other programs to open, was called a dead writer)."""
    from main import main

    path = write_session(tmp_path, 0.2)
    with held_open(path, how):
        for command in ("inspect", "verify"):
            assert main([command, str(path)]) == 2
            err = capsys.readouterr().err
            assert "in use by another program" in err and "damaged" not in err.replace("not damaged", "")
            assert "no program holds it" not in err and "not closed by the recorder" not in err
        with pytest.raises(RecordingError, match="in use by another program"):
            Recording.open(path)
    with held_open(path, "project"):  # a reader never counts: the file is simply verified
        assert main(["verify", str(path)]) == 0, capsys.readouterr()


def test_a_file_left_marked_open_by_a_killed_program_says_so(tmp_path):
    path = write_session(tmp_path, 0.2)
    with held_open(path, "append") as proc:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with pytest.raises(RecordingError) as info:
        Recording.open(path)
    assert "no program holds it" in str(info.value) and "in use" not in str(info.value)


# --- item 6: everything published before the close is in the file --------------------------------------------------
def test_everything_published_before_the_writers_last_take_is_in_the_file(tmp_path):
    rec = _live(tmp_path)
    bus = SessionBus()
    bus.subscribe(rec)
    published = 0
    stop = threading.Event()

    def publish() -> None:
        nonlocal published
        # A flood, but one that lets the writer run: an unyielding loop starves it of the GIL past close()'s 10 s
        # bound on a loaded machine, and an endless one would outlive a failed close().
        while not stop.is_set() and published < 200_000:
            bus.publish_event(Event(T0 + 1 + published * 1e-6, "interlock", "high", "safety", f"trip {published}",
                                    {"k": published}))
            published += 1
            if published % 64 == 0:
                time.sleep(0)

    th = threading.Thread(target=publish, daemon=True)
    th.start()
    time.sleep(0.15)
    before_close = published
    try:
        rec.close()
    finally:
        stop.set()
        th.join()
    with Recording.open(rec.path) as r:
        ks = [e.details["k"] for e in r.events if "k" in e.details]
        # past LATE_LIMIT items during the close (a loaded machine's close is slow), the file names how many it lacks
        not_kept = [e.details["items_not_recorded"] for e in r.events if "items_not_recorded" in e.details]
        assert len(r.events) == len(ks) + len(not_kept)  # nothing else in the file
    assert ks == list(range(len(ks)))  # in order, none missing
    assert len(ks) >= before_close  # every event published before close() was called is in the file
    assert len(ks) + rec.refused_after_close == published  # and what came after is counted, not lost silently
    assert len(not_kept) <= 1 and sum(not_kept) <= rec.refused_after_close


# --- items 4 and 6 through whole sessions: times inside the session, the last trip recorded, HDF5 1.10 tools ---------
@pytest.mark.parametrize("scenario", ["combined-uneventful.toml", "unplug-mid-exposure.toml"])
def test_a_whole_session_every_row_inside_it_and_every_trip_recorded(tmp_path, scenario):
    from workstation.session.runner import run_scenario
    from workstation.session.scenario import load_scenario

    result = run_scenario(load_scenario(ROOT / "seeds" / "scenarios" / scenario), tmp_path, out=lambda s: None)
    t_end = now_s()
    with Recording.open(result.recording) as rec:
        t0 = rec.meta.t0_host_s
        times = {"events": [e.t_host_s for e in rec.events], "commands": [c.t_host_s for c in rec.commands],
                 "plan": [t for t, _ in rec.plans]}
        for d in rec.devices:
            times[d] = rec.telemetry(d)["t_host_s"].tolist()
        for table, ts in times.items():
            outside = [t - t0 for t in ts if not t0 <= t <= t_end]
            assert not outside, f"{table}: rows outside the session at {outside} s"
        recorded = [(e.details["interlock"], e.details["device"]) for e in rec.events if e.kind == "interlock"]
    summary = [(t["interlock"], t["device"]) for t in result.summary["trips"]]
    missing = [t for t in summary if t not in recorded]  # the order may differ between two threads' trips
    assert not missing, f"trips printed in the summary but not in the recording: {missing}"
    if shutil.which("h5dump") and shutil.which("h5ls"):
        for cmd in (["h5dump", "-H"], ["h5ls", "-r"]):
            out = subprocess.run([*cmd, str(result.recording)], capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr[-2000:]


# --- item 7: a full disk -------------------------------------------------------------------------------------------
@contextlib.contextmanager
def small_disk(size: str):
    """A real tmpfs of `size` (needs root, as CI runs); skipped with the reason otherwise."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root); the RLIMIT_FSIZE test covers the rest")
    d = tempfile.mkdtemp(prefix="cicatrix-full-")
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", d], capture_output=True, text=True)
    if out.returncode != 0:
        os.rmdir(d)
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()}")
    try:
        yield Path(d)
    finally:
        subprocess.run(["umount", "-l", d], check=False)
        os.rmdir(d)


FILL = textwrap.dedent("""
    import json, sys, threading, time
    sys.path.insert(0, sys.argv[2])
    import helpers_recording as h
    from workstation.recording.unclosable import exit_if_a_file_is_unclosable
    got = threading.Event()
    errors = []
    rec = h.SessionRecorder.create(sys.argv[1], h.meta(), min_free_bytes=0, reserve_bytes=0, t0_host_s=1000.0,
                                   ballast_bytes=int(sys.argv[3]), on_error=lambda e: (errors.append(str(e)), got.set()))
    h.add_devices(rec)
    rec.start()
    k = 0
    published = {"light": 0, "pen": 0}
    while not got.is_set() and k < 400000:
        for dev in ("light", "pen"):
            block = h.frames(dev, k, 1)[0]
            rec.on_block(dev, block)
            published[dev] += len(block)
        k += 1
        if k % 100 == 0:
            time.sleep(0.002)
    for dev in ("light", "pen"):  # a block sent after the failure, as a device does until the session stops it
        block = h.frames(dev, k, 1)[0]
        rec.on_block(dev, block)
        published[dev] += len(block)
    sha = rec.close()
    print(json.dumps({"error": errors[0] if errors else None, "path": str(rec.path), "sha": sha,
                      "checksum_failure": rec.checksum_failure, "published": published}), flush=True)
    del rec
    exit_if_a_file_is_unclosable(0)
""")


def _fill(directory: Path, ballast_bytes: int) -> dict:
    out = subprocess.run([sys.executable, "-c", FILL, str(directory), str(TESTS), str(ballast_bytes)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"exit {out.returncode} (a segfault is -11): {out.stderr[-2000:]}"
    assert "Traceback" not in out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _check_left_behind(result: dict) -> None:
    path = Path(result["path"])
    names = sorted(p.name for p in path.parent.iterdir())
    # no ballast, no temporary checksum or signature; the signature only beside a checksum
    assert names in ([path.name], [path.name, path.name + ".sha256"], [path.name, path.name + ".sha256",
                                                                       path.name + ".sig"])
    sha_file = fmt.checksum_path(path)
    if result["sha"] is not None:
        assert sha_file.read_text().split() == [result["sha"], path.name]
        assert result["checksum_failure"] is None
    else:
        assert not sha_file.exists()  # atomically or not at all: never a 0-byte checksum
        # and why, in words (fresh tester of issue 12: "sha256 not written" came with no reason)
        assert "no checksum could be written" in result["checksum_failure"]
        assert_in_words(result["checksum_failure"])


def test_free_space_below_the_reserve_stops_the_recorder_at_the_flush_that_sees_it():
    """Free space is checked at every flush: the disk filled below the 50 MB reserve during one flush (on its
    `on_flush`), and the recorder stops at that same flush. Checked once a second, it went on for up to four more
    flushes, and a second fresh tester of issue 12 saw the light run on unrecorded for 0.9 s."""
    with small_disk("120m") as disk:
        flushed, errors = [], []
        filler = disk / "filler"

        def fill_at_the_second(rows: dict) -> None:
            flushed.append(dict(rows))
            if len(flushed) == 2:
                with open(filler, "wb") as f:  # leave 20 MB: below the reserve, room enough to close
                    os.posix_fallocate(f.fileno(), 0, shutil.disk_usage(disk).free - 20 * 2**20)

        rec = SessionRecorder.create(disk, meta(), min_free_bytes=0, reserve_bytes=50 * 2**20, t0_host_s=1000.0,
                                     on_flush=fill_at_the_second, on_error=errors.append)
        add_devices(rec)
        rec.start()
        deadline = time.monotonic() + 30
        k = 0
        while not errors and time.monotonic() < deadline:
            for dev in ("light", "pen"):
                rec.on_block(dev, frames(dev, k, 1)[0])
            k += 1
            time.sleep(0.005)
        rec.close()
        assert errors and "reserve" in str(errors[0]), errors
        assert rec.stats.flushes == 2, rec.stats.flushes  # the flush that filled it, and no other
        with Recording.open(rec.path) as r:
            assert r.samples("light") > 0


def test_a_disk_full_to_the_last_byte_closes_the_recording_readable():
    from workstation.recording.writer import BALLAST_BYTES

    with small_disk("16m") as disk:
        result = _fill(disk, BALLAST_BYTES)
        assert result["error"] and "is full" in result["error"]
        assert_in_words(result["error"])
        _check_left_behind(result)
        with Recording.open(result["path"]) as r:
            assert r.partial and "full" in r.partial_reason
            assert_in_words(r.partial_reason)  # the file's close_note: a sentence too
            check_rows("light", r.telemetry("light"))
            check_rows("pen", r.telemetry("pen"))
            assert r.samples("light") > 10_000
            # every sample published is in the file or counted lost, with its words (tenth fresh tester: rows the
            # disk refused read back as zeros, "0 lost"; the blocks after the failure were dropped uncounted)
            for dev in ("light", "pen"):
                assert r.samples(dev) + r.samples_lost(dev) == result["published"][dev], dev
                assert r.samples_lost(dev) >= 1  # at least the block sent after the failure
                lost = [e for e in r.events if e.kind == "alarm" and e.details.get("device") == dev
                        and "samples_lost" in e.details]
                assert sum(e.details["samples_lost"] for e in lost) == r.samples_lost(dev)
                for e in lost:
                    assert_in_words(e.message)
                    # in session time, as every other time the tools show (a fresh tester: "between 84632.867 s and
                    # 84632.927 s host time" beside a replay timeline of 0-5.9 s)
                    assert e.message.endswith(" of the session.") and "host time" not in e.message, e.message
        _rows_match_their_counts(result["path"])


def _rows_match_their_counts(path) -> None:
    """With plain h5py: each device's extent is its `samples` attribute and every row of it was written."""
    with h5py.File(path, "r") as f:
        for dev, g in f[fmt.DEVICES_GROUP].items():
            t = g[fmt.TELEMETRY].fields("t_host_s")[:]
            assert len(t) == g.attrs["samples"] and (t != 0.0).all(), (dev, len(t), g.attrs["samples"])
            assert g.attrs["samples_lost"] == g[fmt.LOSSES]["samples_lost"].sum()
            index = g[fmt.INDEX][:]
            assert (index["row"] < len(t)).all() and (np.diff(index["row"].astype(np.int64)) > 0).all()


def test_a_disk_too_full_even_for_the_close_ends_the_process_without_a_crash():
    with small_disk("2m") as disk:
        result = _fill(disk, 64 * 1024)  # too little ballast: the close itself may fail
        assert result["error"] and "is full" in result["error"]
        _check_left_behind(result)
        try:
            r = Recording.open(result["path"])
        except RecordingError as exc:  # a sentence naming the file, never a raw HDF5 error
            assert Path(result["path"]).name in str(exc)
            assert_in_words(str(exc))
        else:
            with r:
                assert r.partial
                assert_in_words(r.partial_reason or "")
                check_rows("light", r.telemetry("light"))


def _keep_filling(path: Path, proc: subprocess.Popen) -> None:
    """Take every byte that frees up on the disk while `proc` runs."""
    with open(path, "ab", buffering=0) as f:
        while proc.poll() is None:
            try:
                f.write(b"\0" * 4096)
            except OSError:
                time.sleep(0.0005)


@pytest.mark.parametrize(("filler_keeps_writing", "store_on_the_disk"), [(False, False), (True, False), (True, True)])
def test_the_headless_session_on_a_disk_that_fills_stops_safely_with_its_summary_and_exit_3(filler_keeps_writing,
                                                                                          store_on_the_disk):
    """The disk fills to the last byte while the session records; with `filler_keeps_writing` another program keeps
    taking every byte freed (the recorder's own reserve too), so the checksum may find no room; with
    `store_on_the_disk` the clinic store is on that disk too (fresh tester of 12: SQLite's "database or disk is
    full" crashed the runner)."""
    with small_disk("620m") as disk:  # a session needs 600 MB free to start
        # the store and the log folder on that disk too: neither may crash the runner or print a trace
        logs = ["--log-dir", str(disk / "logs")] if store_on_the_disk else []
        store = ["--store", str(disk / "store.sqlite3")] if store_on_the_disk else []
        proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *logs, "session", "--simulate", "--scenario",
                                 str(ROOT / "seeds" / "scenarios" / "combined-uneventful.toml"), "--record",
                                 str(disk / "rec"), *store], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=ROOT)
        deadline = time.monotonic() + 30
        while not list(disk.glob("rec/*/*.h5")) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)
        with contextlib.suppress(OSError), open(disk / "filler", "wb") as f:  # to the last byte
            # most of it in one call: written 1 MB at a time, the 600 MB took longer than the whole session on a
            # loaded machine (a seventh-session loaded run: the session completed, exit 0, before the disk filled)
            os.posix_fallocate(f.fileno(), 0, max(1, shutil.disk_usage(disk).free - 8 * 2**20))
            f.seek(0, os.SEEK_END)
            while True:
                f.write(b"\0" * 2**20)
        with contextlib.suppress(OSError), open(disk / "filler", "ab") as f:
            while True:
                f.write(b"\0" * 512)
                f.flush()
        keep = threading.Thread(target=_keep_filling, args=(disk / "filler", proc), daemon=True)
        if filler_keeps_writing:
            keep.start()
        filled_while_running = proc.poll() is None
        out, err = proc.communicate(timeout=120)
        if filler_keeps_writing:
            keep.join(10)
        assert filled_while_running, f"the session ended before the disk was full: {out[-1500:]}"
        assert proc.returncode == 3, f"exit {proc.returncode}: {out[-1500:]} {err[-1500:]}"
        assert "Traceback" not in err
        # the session's outcome word (partial when something was delivered) and the runner's verdict
        # (each assertion shows the runner's words: a load trip before the disk filled is then seen and run again)
        assert ("session aborted" in out or "session partial" in out) and ("outcome: aborted (stopped early)" in out
                                                                          or "outcome: partial (stopped early)" in out), out
        assert "exit code 3" in out and ("recording stopped early" in out or "store not written" in out), out
        assert "ERROR workstation" not in out + err  # logger lines go to the log file; the user reads sentences
        for line in (out + err).splitlines():
            assert_in_words(line)
        h5 = next(disk.glob("rec/*/*.h5"))
        assert not list(disk.glob("rec/*/.*"))  # no ballast, no temporary checksum left
        sha = fmt.checksum_path(h5)
        assert not sha.exists() or sha.stat().st_size > 0
        (line,) = [line for line in out.splitlines() if line.startswith("recording: ")]
        if sha.exists():  # the checksum the summary gives is the one beside the file, and whether it is signed
            digest = sha.read_text().split()[0]
            if fmt.signature_path(h5).exists():
                assert line.endswith(f"(sha256 {digest})"), line
            else:  # the filler took the room the signature needed (the first loaded run of the eighteenth session)
                assert f"(sha256 {digest}; not signed: " in line and line.split("not signed: ")[1].strip(" )"), line
        else:  # or why there is none, in words
            assert "(sha256 not written: " in line and line.split("not written: ")[1].strip(" )"), line
        with Recording.open(h5) as r:  # closed or left readable
            assert r.samples("light") > 0
        with h5py.File(h5, "r", locking=False) as f:
            # The closing reopen ran, even with the filler taking every byte freed: it wrote into the room the file
            # held past its end (recording/room.py; a fresh tester's `dd` took the freed ballast, and the trips were
            # not in the file). The file says it closed on a full disk.
            assert "end_time_utc" in f.attrs and f.attrs["closed_on_full_disk"], dict(f.attrs)
        _rows_match_their_counts(h5)
        # its samples after the failure are counted lost, so no review blames the link (second fresh tester)
        assert "(the link was lost)" not in out, out
        with Recording.open(h5) as r:  # the E-stop the failure caused is in the file (fresh tester: it was not)
            assert any(e.kind == "interlock" and e.details.get("interlock") == "estop" for e in r.events), \
                [e.message for e in r.events][-10:]
        if sha.exists() and not fmt.signature_path(h5).exists():  # the filler took the room for the signature
            assert "; not signed: no signature could be written beside the file: the disk is full)" in line, line
            shown = subprocess.run([sys.executable, str(ROOT / "main.py"), "inspect", str(h5)], capture_output=True,
                                   text=True, cwd=ROOT, timeout=120).stdout
            assert "closed it on a full disk (the file says so)" in shown, shown


def test_a_row_without_a_usable_time_is_stamped_on_arrival_and_keeps_what_it_came_with(tmp_path):
    from workstation.bus import CommandRecord

    t_before = now_s()
    rec = SessionRecorder.create(tmp_path, meta(), min_free_bytes=0)
    add_devices(rec)
    rec.start()
    rec.on_command(CommandRecord(0.0, "light", "arm", {"on": True}, "ack", float("nan")))  # the 0.0 rows
    rec.on_event(Event(float("nan"), "interlock", "high", "safety", "no device", {"interlock": "estop"}))
    rec.close()
    with Recording.open(rec.path) as r:
        assert r.meta.t0_host_s >= t_before
        (c,), (e,) = r.commands, r.events
        assert r.meta.t0_host_s <= c.t_host_s <= now_s() and c.args == {"on": True, "t_host_s_given": 0.0}
        assert r.meta.t0_host_s <= e.t_host_s <= now_s() and e.details["t_host_s_given"] is None
        assert e.details["non_finite"] == {"/t_host_s_given": "nan"}


def test_every_command_is_stamped_before_its_answer_can_arrive():
    """The issue's `t_host_s = 0.0` rows: the reply was recorded before the sender had stamped the command."""
    from drivers.emulators import LightEmulator
    from drivers.light import UVB308Light
    from workstation.bus import BaseSink

    class Commands(BaseSink):
        def __init__(self) -> None:
            self.rows = []

        def on_command(self, record) -> None:
            self.rows.append(record)

    bus = SessionBus()
    sink = Commands()
    bus.subscribe(sink)
    t_start = now_s()
    with LightEmulator() as emu:
        dev = UVB308Light(emu.port, bus=bus)
        try:
            dev.connect()
            for _ in range(300):
                dev.arm(False)
        finally:
            dev.close()
    answered = [r for r in sink.rows if r.result == "ack"]
    assert len(answered) >= 300
    bad = [r for r in answered if not t_start <= r.t_host_s <= r.t_reply_s]
    assert not bad, f"{len(bad)} commands stamped outside [start, reply]: {bad[:3]}"


def test_the_checksum_words_of_a_closed_recording_always_say_what_there_is_or_why_not():
    from workstation.session.rig import Closed

    assert Closed(Path("a.h5"), "ab" * 32, None).checksum_words == f"sha256 {'ab' * 32}"
    full = Closed(Path("a.h5"), None, "The disk … is full", "no checksum could be written beside the file: the disk "
                  "is full")
    assert full.checksum_words == "sha256 not written: no checksum could be written beside the file: the disk is full"
    assert Closed(Path("a.h5"), None, "Closing … failed").checksum_words == (
        "sha256 not written: the recording could not be closed")


EVENT_ON_A_FULL_DISK = textwrap.dedent("""
    import json, os, shutil, subprocess, sys, time
    sys.path.insert(0, sys.argv[2])
    import helpers_recording as h
    from workstation.bus import Event
    from workstation.recording.unclosable import exit_if_a_file_is_unclosable
    errors = []
    rec = h.SessionRecorder.create(sys.argv[1], h.meta(), min_free_bytes=0, t0_host_s=1000.0,
                                   on_error=lambda e: errors.append(str(e)))
    h.add_devices(rec)
    rec.start()
    for k in range(100):
        for dev in ("light", "pen"):
            rec.on_block(dev, h.frames(dev, k, 1)[0])
    time.sleep(0.5)
    subprocess.run(["fallocate", "-l", str(shutil.disk_usage(sys.argv[1]).free), os.path.join(sys.argv[1], "fill")],
                   check=True)  # every byte left, at once: the recorder's reserve check cannot see it coming
    rec.on_event(Event(1001.0, "state", "info", "session", "treating -> completed", {"to": "completed"}))
    if sys.argv[3] == "wait":
        time.sleep(0.6)  # the periodic write meets the full disk; else the close does
    sha = rec.close()
    print(json.dumps({"error": errors[0] if errors else None, "path": str(rec.path), "sha": sha,
                      "checksum_failure": rec.checksum_failure}), flush=True)
    del rec
    exit_if_a_file_is_unclosable(0)
""")


@pytest.mark.parametrize("when", ["wait", "close"])
def test_an_event_written_to_a_disk_filled_at_once_never_crashes_the_recorder(when):
    """Fresh tester of issue 12: the disk filled at once (fallocate) before the first text rows: SIGSEGV in the
    writer's flush or close, 6 of 6 runs. The session tables' dataset objects were made per write and freed inside
    the failing write; they are now opened once and kept, so the close has the ballast's room and a sound state."""
    if not shutil.which("fallocate"):
        pytest.skip("fallocate (util-linux) is not installed")
    with small_disk("700m") as disk:
        out = subprocess.run([sys.executable, "-c", EVENT_ON_A_FULL_DISK, str(disk), str(TESTS), when],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, f"exit {out.returncode} (a segfault is -11): {out.stderr[-2000:]}"
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["error"] and "full" in result["error"]
        _check_left_behind(result)
        with Recording.open(result["path"]) as r:
            assert r.partial and r.samples("light") == 100 * 20  # 100 frames of 20 samples, all kept
