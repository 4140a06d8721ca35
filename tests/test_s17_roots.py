"""Each workstation's own recordings folder (issue 17's fresh tester, item 1): `store set-recordings-root` run in
one room changed the recordings root of every room sharing the store. Now each workstation's root is its own row
(revision 0005), a room can never re-point another room's, and a store from before keeps every recording where it
was. Both engines (`store_url`); real files in real folders."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

from sqlalchemy import create_engine, text

from workstation.protocols import load_library
from workstation.store import ClinicStore
from workstation.store.upgrade import config


def _course(store: ClinicStore) -> int:
    p = store.create_patient("CX-00ROOTS1")
    area = store.add_area(p.id, "back", "back", "atrophic_scar", 4, "II")
    return store.create_course(p.id, load_library().get("atrophic-scar-needling"), [area.id], date(2026, 1, 1)).id


def _recording(root: Path, name: str, day: str = "2026-01-05") -> tuple[Path, str]:
    f = root / day / f"{name}.h5"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(name.encode() * 100)
    return f, hashlib.sha256(f.read_bytes()).hexdigest()


def _as(store: ClinicStore, host: str) -> ClinicStore:
    store.workstation = host  # one process plays both rooms: the store's host name is what tells them apart
    return store


def test_a_room_moves_only_its_own_recordings_folder(store_url, tmp_path):
    disk_a, disk_b = tmp_path / "room-a" / "recordings", tmp_path / "room-b" / "recordings"
    with _as(ClinicStore.open(store_url, training=False), "room-a") as a:
        a.settle_recordings_root(disk_a, write=True)
        course = _course(a)
        rec_a, sha_a = _recording(disk_a, "a1")
        sid_a = a.add_session(course, date(2026, 1, 5))
        a.link_recording(sid_a, rec_a, sha_a)
    with _as(ClinicStore.open(store_url, training=False), "room-b") as b:
        b.settle_recordings_root(disk_b, write=True)
        rec_b, sha_b = _recording(disk_b, "b1", "2026-01-12")
        sid_b = b.add_session(course, date(2026, 1, 12))
        b.link_recording(sid_b, rec_b, sha_b)
        assert b.recordings_roots() == {"room-a": disk_a, "room-b": disk_b}
        assert b.recording(sid_b)[0] == "2026-01-12/b1.h5"
        assert b.recording_path(sid_a) == rec_a and b.recording_holder(sid_a) == "room-a"
        # room B moves its folder to a second disk and says so
        moved = tmp_path / "room-b" / "disk2"
        disk_b.rename(moved)
        assert b.recordings_found_under(moved) == (1, 1)  # only its own recording counts
        b.set_recordings_root(moved)
        assert b.recording_path(sid_b) == moved / "2026-01-12" / "b1.h5" and b.verify_recording(sid_b)
        # a folder that holds room A's files is never taken for room A from room B
        b.set_recordings_root(disk_a)
        assert b.recordings_roots()["room-a"] == disk_a and b.recording_path(sid_a) == rec_a
        b.set_recordings_root(moved)
    with _as(ClinicStore.open(store_url, training=False), "room-a") as a:
        # a folder in force that holds none of its recordings is not adopted
        assert a.settle_recordings_root(tmp_path / "elsewhere", write=True) == disk_a == a.recordings_root
        assert a.recording_path(sid_a) == rec_a and a.verify_recording(sid_a)
        assert a.recording_path(sid_b) == moved / "2026-01-12" / "b1.h5"  # where room B says its files are


def _store_at_0004(store_url: str, tmp_path: Path, root: Path) -> None:
    """A store at revision 0004 (before each workstation had its root), with the store-wide root and one
    recording indexed relative to it, written as that program did."""
    from alembic import command

    url = store_url if "://" in store_url else f"sqlite:///{store_url}"
    engine = create_engine(url)
    with engine.connect() as conn:
        cfg = config(conn)
        command.upgrade(cfg, "0004")
        conn.commit()
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('role', 'clinic'), ('recordings_root', :r)"),
                     {"r": str(root)})
        conn.commit()
    engine.dispose()


def test_a_store_from_before_keeps_every_recording_and_no_room_repoints_it(store_url, tmp_path):
    old_root = tmp_path / "recordings"
    _store_at_0004(store_url, tmp_path, old_root)
    with _as(ClinicStore.open(store_url, training=False), "room-a") as a:
        course = _course(a)
        rec, sha = _recording(old_root, "legacy")
        sid = a.add_session(course, date(2026, 1, 5))
        with a.transaction() as c:  # indexed as revision 0004 did: relative to the store-wide root, no holder
            c.execute("INSERT INTO recordings (session_id, path, sha256) VALUES (?, ?, ?)",
                      (sid, "2026-01-05/legacy.h5", sha))
        assert a.recording_path(sid) == rec and a.recording_holder(sid) is None
    # room B (another disk) opens with its own folder: it records its own root, the old recording stays put
    with _as(ClinicStore.open(store_url, training=False), "room-b") as b:
        assert b.settle_recordings_root(tmp_path / "b", write=True) == tmp_path / "b" == b.recordings_root
        b.set_recordings_root(tmp_path / "b")  # said explicitly: still nothing of room A's moves
        assert b.recording_path(sid) == rec and b.verify_recording(sid)
    # a command that only reads, on a workstation with no folder recorded yet, given a folder without it
    with ClinicStore.open(store_url, training=False, recordings_root=tmp_path / "typo", read_only=True) as r:
        assert r.recording_path(sid) == rec and r.verify_recording(sid)
    # the room that holds it moves the folder: the recording is taken over by that room, nothing is lost
    moved = tmp_path / "disk2"
    old_root.rename(moved)
    with _as(ClinicStore.open(store_url, training=False), "room-a") as a:
        a.settle_recordings_root(moved, write=True)
        assert a.recordings_root == moved and a.recording_holder(sid) == "room-a"
        assert a.recording_path(sid) == moved / "2026-01-05" / "legacy.h5" and a.verify_recording(sid)
        assert a.recordings_roots() == {"room-a": moved, "room-b": tmp_path / "b"}


def test_set_recordings_root_says_it_changes_this_workstations_folder_only(tmp_path, monkeypatch, capsys):
    from main import main
    from workstation import places
    from workstation.keys import workstation_name

    root = places.recordings_dir()
    disk_b = tmp_path / "room-b-disk"
    with ClinicStore.open(training=False, recordings_root=root) as store:
        course = _course(store)
        rec, sha = _recording(root, "here")
        sid = store.add_session(course, date(2026, 1, 5))
        store.link_recording(sid, rec, sha)
    with _as(ClinicStore.open(training=False), "room-b") as b:
        b.set_recordings_root(disk_b)
    moved = tmp_path / "disk2"
    root.rename(moved)
    monkeypatch.chdir(tmp_path)
    assert main(["store", "set-recordings-root", str(moved)]) == 0
    out = capsys.readouterr().out
    assert f"this workstation's ({workstation_name()}) recordings folder" in out and f"-> {moved}" in out
    assert f"unchanged: room-b's folder {disk_b}; the clinic's recordings share" in out
    with ClinicStore.open(training=False) as store:
        assert store.recordings_roots() == {workstation_name(): moved, "room-b": disk_b}
        assert store.recording_path(sid) == moved / "2026-01-05" / "here.h5" and store.verify_recording(sid)


def test_the_clinic_share_is_clinic_wide_and_moves_only_deliberately(store_url, tmp_path, capsys):
    from helpers_recording import write_session

    from main import main
    from workstation.checksum import sha256_of
    from workstation.recording.share import sync_once
    from workstation.recording.summary import check_checksum

    root, share, elsewhere = tmp_path / "recordings", tmp_path / "share", tmp_path / "room-b-share"
    share.mkdir()
    elsewhere.mkdir()
    local = write_session(root, 0.3, mode="clinical")
    with ClinicStore.open(store_url, training=False, recordings_root=root) as store:
        sid = store.add_session(_course(store), date(2026, 1, 5))
        store.link_recording(sid, local, sha256_of(local))
        assert sync_once(store, share)[:2] == (1, [])
        assert store.clinic_share() == share  # the first verified copy records the clinic's share
        copy = store.shared_path(sid)
    # a room whose settings name another folder copies nothing there, and says why
    with _as(ClinicStore.open(store_url, training=False), "room-b") as b:
        other = write_session(tmp_path / "b-recordings", 0.3, mode="clinical")
        b.settle_recordings_root(tmp_path / "b-recordings", write=True)
        sid_b = b.add_session(b.course_of_session(sid), date(2026, 1, 12))
        b.link_recording(sid_b, other, sha256_of(other))
        copied, problems, pending = sync_once(b, elsewhere)
        assert (copied, pending) == (0, 1) and list(elsewhere.iterdir()) == []
        assert f"this workstation's share {elsewhere} is not the clinic's ({share}, recorded in the store)" in \
            problems[0] and "--clinic-share" in problems[0]
    # the clinic moves its share deliberately: refused while the copies are not there, then every room's index
    given = store_url if "://" in store_url else str(Path(store_url))
    moved = tmp_path / "nas2" / "recordings"
    moved.parent.mkdir()
    assert main(["store", "set-recordings-root", "--clinic-share", str(elsewhere), "--store", given]) == 2
    assert "None of the 1 copies" in capsys.readouterr().err
    share.rename(moved)
    assert main(["store", "set-recordings-root", "--clinic-share", str(moved), "--store", given]) == 0
    out = capsys.readouterr().out
    assert "the clinic's recordings share, for EVERY room, in" in out and f"{share} -> {moved}; 1 of 1" in out
    assert "unchanged: each workstation's own recordings folder" in out
    with _as(ClinicStore.open(store_url, training=False), "room-b") as b:
        assert b.clinic_share() == moved and b.shared_path(sid) == moved / copy.relative_to(share)
        assert check_checksum(b.shared_path(sid)).intact
        assert b.recordings_roots()["room-b"] == tmp_path / "b-recordings"  # no room's own folder moved
        assert sync_once(b, moved)[:3] == (1, [], 0)  # its settings follow: it copies to the clinic's share
