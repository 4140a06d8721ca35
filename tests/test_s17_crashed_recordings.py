"""A crashed room's recording, recovered by the workstation that holds it (issue 17's fresh tester, item 2): room A
is killed mid-exposure (a real SIGKILL of the headless runner, as tests/test_recovery.py), room B's start closes the
session without the file (it is on A's disk) and says where the recording is; A's next `recording sync` (a real
process) finds its own crashed recording, clears its open mark, checksums, signs, indexes, links it, counts its
dose, and copies it to the share, verified there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_load import run_until_killed

from workstation import places
from workstation.recording.format import checksum_path, signature_path
from workstation.recording.mark import open_mark
from workstation.recording.share import ShareCopier
from workstation.recording.summary import check_checksum
from workstation.session.journal import close_crashed_sessions, deliveries_from_recording
from workstation.store import ClinicStore

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "seeds" / "scenarios"


def _room_b(store_path: Path):
    def open_store() -> ClinicStore:
        store = ClinicStore.open(store_path, training=True)
        store.workstation = "room-b"  # the other room's computer (one machine plays both)
        return store
    return open_store


def test_a_crashed_rooms_recording_is_recovered_where_it_is_and_said_where_it_is_elsewhere(tmp_path):
    store_path, rec, share = tmp_path / "training.sqlite3", tmp_path / "room-a-disk", tmp_path / "share"
    share.mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, str(ROOT / "main.py"), "session", "--simulate", "--scenario",
           str(SCENARIOS / "crash-and-restart.toml"), "--record", str(rec), "--store", str(store_path)]
    first = run_until_killed(cmd, [store_path, rec], timeout=120, cwd=ROOT, env=env)
    assert first.returncode == -signal.SIGKILL, first.stdout + first.stderr
    with ClinicStore.open(store_path, training=True) as store:
        [row] = store.in_progress_sessions()
    h5 = Path(row["recording_path"])
    [light] = deliveries_from_recording(h5)
    assert open_mark(h5) and not checksum_path(h5).exists() and not signature_path(h5).exists()

    # room B starts: room A's disk is not visible from there (its settings name its room: one machine plays both)
    hidden = tmp_path / "unmounted"
    rec.rename(hidden)
    settings = places.settings_file()
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text('[clinic]\nroom = "room-b"\n', encoding="utf-8")
    with _room_b(store_path)() as b:
        [closed] = close_crashed_sessions(b)
        room = b.session_state(closed.session_id)["room"] or "another workstation"
        assert f"its recording is still on {room}'s disk, not yet copied" in closed.note
        assert b.recording(closed.session_id) is None and b.crashed_elsewhere() == [(closed.session_id, room)]
        [hist] = b.history(1)
        assert hist.state == "crashed" and hist.treatment(1, "light") is None  # not journalled: the step never ended
    status = ShareCopier(_room_b(store_path), share).sync()
    assert f"{closed.label[:1].upper()}{closed.label[1:]}: recording still on {room}'s disk, not yet copied." in \
        status.text() and closed.label == f"session 1 of the course (record no. {closed.session_id})"
    assert status.pending == 0 and list(share.iterdir()) == []
    settings.unlink()  # this machine is room A again
    rec_a = subprocess.run([sys.executable, str(ROOT / "main.py"), "recording", "sync", "--list", "--training",
                            "--store", str(store_path), "--clinic-recordings", str(share)],
                           capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    # room A, its disk not mounted: its own recording is missing here, not "on room A's disk" (a fresh tester of
    # issue 12, sixteenth session: "recording still on vm's disk", vm being this workstation, exit 0)
    assert rec_a.returncode == 1 and f"{h5} is not on this workstation's disk, where it was recorded" in rec_a.stdout
    assert "'s disk, not yet copied" not in rec_a.stdout, rec_a.stdout

    # room A's disk is back; its `recording sync` (a real process) recovers its own crashed recording
    hidden.rename(rec)
    listed = subprocess.run([sys.executable, str(ROOT / "main.py"), "recording", "sync", "--list", "--training",
                             "--store", str(store_path), "--clinic-recordings", str(share)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert listed.returncode == 1 and "not yet recovered here" in listed.stdout, listed.stdout + listed.stderr
    assert open_mark(h5)  # --list only lists
    synced = subprocess.run([sys.executable, str(ROOT / "main.py"), "recording", "sync", "--once", "--training",
                             "--store", str(store_path), "--clinic-recordings", str(share)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "1 recording copied" in synced.stdout and "Traceback" not in synced.stderr
    assert not open_mark(h5) and check_checksum(h5).intact  # cleared, then checksummed and signed
    with ClinicStore.open(store_path, training=True) as store:
        sid = closed.session_id
        assert store.recording_path(sid) == h5 and store.verify_recording(sid)
        copy = store.shared_path(sid)
        assert copy is not None and check_checksum(copy).intact and "signed by" in check_checksum(copy).text
        [hist] = store.history(1)
        assert hist.treatment(1, "light").dose_mj_cm2 == pytest.approx(light.dose_mj_cm2, abs=0.01)  # now counted
        note = store.session_state(sid)["outcome_note"]
        assert note.startswith("interrupted by a crash") and "its recording was recovered on" in note
    with _room_b(store_path)() as b:
        assert b.crashed_elsewhere() == []  # on the share: nothing left to say in room B
