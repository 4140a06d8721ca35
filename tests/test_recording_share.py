"""The clinic's recordings share (issue 17): real recordings copied into real folders, verified there (checksum and
signature), indexed in a real store; a share that is missing, read-only, full, or that corrupts a copy is said,
retried, and never loses or changes the local recording."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
from helpers_recording import write_session

from main import main
from tests.conftest import wait_for
from workstation.checksum import sha256_of
from workstation.keys import workstation_name
from workstation.protocols import load_library
from workstation.recording.format import sidecar_paths
from workstation.recording.share import ShareCopier, ShareStatus, copy_verified, recording_saved, sync_once
from workstation.recording.summary import check_checksum
from workstation.store import ClinicStore
from workstation.store.records import Treatment

HOST = workstation_name()


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture()
def clinic(tmp_path):
    """A clinic store whose recordings root holds one real, signed recording linked to a session."""
    root = tmp_path / "recordings"
    local = write_session(root, 0.5, mode="clinical")
    sha = sha256_of(local)
    db = tmp_path / "clinic.sqlite3"
    with ClinicStore.open(db, training=False, recordings_root=root) as store:
        p = store.create_patient("CX-00SHARE1")
        area = store.add_area(p.id, "left cheek", "face", "hypopigmented_scar", 3.5, "III")
        course = store.create_course(p.id, load_library().get("hypopigmented-scar-light"), [area.id],
                                     date(2026, 3, 1))
        sid = store.add_session(course.id, date(2026, 3, 2), device_model="UVB-308")
        store.add_treatment(sid, Treatment(area.id, "light", dose_mj_cm2=210))
        store.link_recording(sid, local, sha)
    return db, local, sha, sid


def _open(db: Path):
    return lambda: ClinicStore.open(db, training=False)


def _files_of(local: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in (local, *sidecar_paths(local))}


def _leftovers(share: Path) -> list[Path]:
    return [p for p in share.rglob("*") if p.name.endswith(".part")]


def test_a_recording_is_copied_verified_and_indexed_and_the_local_files_are_unchanged(clinic, tmp_path):
    db, local, sha, sid = clinic
    before = _files_of(local)
    share = tmp_path / "share"
    share.mkdir()
    with ClinicStore.open(db, training=False) as store:
        assert [(s, p) for s, p, _ in store.recordings_to_share(HOST)] == [(sid, local)]
        copied, problems, pending = sync_once(store, share)
        assert (copied, problems, pending) == (1, [], 0)
        dest = share / local.parent.name / local.name
        assert store.shared_path(sid) == dest
        assert store.recordings_to_share(HOST) == []
        assert sync_once(store, share) == (0, [], 0)  # nothing twice
    check = check_checksum(dest)
    assert check.intact, check.text
    assert "signed by" in check.text
    assert sha256_of(dest) == sha and _files_of(dest) == before
    assert _files_of(local) == before  # only read
    assert _leftovers(share) == []


def test_a_missing_share_is_retried_and_copied_when_it_appears(clinic, tmp_path):
    db, local, _sha, sid = clinic
    share = tmp_path / "mnt" / "share"
    seen: list[ShareStatus] = []
    copier = ShareCopier(_open(db), share, on_status=seen.append, retry_first_s=0.05, retry_max_s=0.2).start()
    try:
        wait_for(lambda: len(seen) >= 2, 10, "two failed passes")
        status = seen[-1]
        assert status.pending == 1 and "not reachable" in status.problem and status.retry_in_s is not None
        assert status.text().startswith(f"1 recording waiting to copy to {share}: the share {share} is not reachable")
        assert "retrying" in status.text()
        share.mkdir(parents=True)
        wait_for(lambda: seen[-1].problem is None and seen[-1].pending == 0, 10, "the copy once the share is there")
        assert seen[-1].copied == 1 and seen[-1].text() == ""
    finally:
        assert copier.stop()
    with ClinicStore.open(db, training=False) as store:
        assert store.shared_path(sid) == share / local.parent.name / local.name
    assert local.is_file()


@contextmanager
def _read_only(share: Path):
    """The share read-only for this process: a read-only bind mount when running as root (root ignores modes),
    else chmod 0555. Skips when the bind mount cannot be made."""
    if os.geteuid() != 0:
        share.chmod(0o555)
        try:
            yield
        finally:
            share.chmod(0o755)
        return
    r = subprocess.run(["mount", "--bind", "-o", "ro", str(share), str(share)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("a read-only bind mount cannot be made here (root without mount rights)")
    try:
        yield
    finally:
        subprocess.run(["umount", "--lazy", str(share)], check=True)  # the copier may be reading it


def test_a_read_only_share_is_said_and_retried_and_the_copy_follows_once_writable(clinic, tmp_path):
    db, local, _sha, sid = clinic
    share = tmp_path / "share"
    share.mkdir()
    seen: list[ShareStatus] = []
    copier = ShareCopier(_open(db), share, on_status=seen.append, retry_first_s=0.05, retry_max_s=0.2)
    try:
        with _read_only(share):
            copier.start()
            wait_for(lambda: len(seen) >= 2, 10, "two refused passes")
            problem = seen[-1].problem
            assert seen[-1].pending == 1 and ("read-only" in problem or "permission denied" in problem), problem
            assert list(share.rglob("*")) == []  # nothing half-written left behind
            with ClinicStore.open(db, training=False) as store:
                assert store.shared_path(sid) is None
        wait_for(lambda: seen[-1].problem is None and seen[-1].pending == 0, 10, "the copy once writable")
    finally:
        assert copier.stop()
    assert check_checksum(share / local.parent.name / local.name).intact


def test_a_copy_corrupted_on_the_share_is_refused_removed_and_copied_again(clinic, tmp_path):
    db, local, sha, sid = clinic
    before = _files_of(local)
    share = tmp_path / "share"
    share.mkdir()
    corrupted: list[Path] = []

    def corrupt_first(dest: Path) -> None:
        if not corrupted:
            _flip_one_byte(dest)
            corrupted.append(dest)

    with ClinicStore.open(db, training=False) as store:
        copied, problems, pending = sync_once(store, share, after_copy=corrupt_first)
        assert (copied, pending) == (0, 1)
        assert "did not verify" in problems[0] and "DOES NOT MATCH" in problems[0]
        assert not corrupted[0].exists()  # the bad copy is not left for others to read
        assert store.shared_path(sid) is None
        assert _files_of(local) == before
        assert sync_once(store, share, after_copy=corrupt_first)[:2] == (1, [])
    assert sha256_of(corrupted[0]) == sha and check_checksum(corrupted[0]).intact


def test_a_copy_whose_signature_is_missing_on_the_share_is_refused(clinic, tmp_path):
    db, local, _sha, _sid = clinic
    share = tmp_path / "share"
    share.mkdir()
    with pytest.raises(Exception, match="SIGNATURE MISSING"):
        copy_verified(local, share, Path("d") / local.name, _sha,
                      after_copy=lambda dest: sidecar_paths(dest)[1].unlink())
    assert not (share / "d" / local.name).exists()


@contextmanager
def _tiny_tmpfs(folder: Path):
    folder.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(folder)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("a small tmpfs cannot be mounted here (needs root)")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_full_share_is_said_and_leaves_no_partial_file(clinic, tmp_path):
    db, local, _sha, sid = clinic
    assert local.stat().st_size > 64 * 1024  # bigger than the share
    share = tmp_path / "full"
    with _tiny_tmpfs(share), ClinicStore.open(db, training=False) as store:
        copied, problems, pending = sync_once(store, share)
        assert (copied, pending) == (0, 1)
        assert "is full" in problems[0]
        assert _leftovers(share) == [] and not (share / local.parent.name / local.name).exists()
        assert [f for f in share.rglob("*") if f.is_file()] == []  # nor its .sha256 and .sig (fourth fresh tester)
        assert store.shared_path(sid) is None
    assert local.is_file()


def test_a_full_share_leaves_no_folder_it_made_and_keeps_what_was_there(clinic, tmp_path):
    """Fresh tester of the integrity checks: a share that filled up kept an empty day folder. A failed copy leaves
    nothing it created, folders included, and keeps the folders and files that were there before it."""
    db, local, _sha, sid = clinic
    share = tmp_path / "full"
    with _tiny_tmpfs(share), ClinicStore.open(db, training=False) as store:
        copied, problems, _pending = sync_once(store, share)
        assert copied == 0 and "is full" in problems[0]
        assert list(share.rglob("*")) == []  # not even the day folder
        with pytest.raises(Exception, match="is full"):  # deeper folders made by the copy go as well
            copy_verified(local, share, Path("2026") / "03" / local.parent.name / local.name, _sha)
        assert list(share.rglob("*")) == []
        day = share / local.parent.name
        day.mkdir()
        (share / "empty-before").mkdir()
        other = day / "another-session.h5"
        other.write_bytes(b"another room's recording")
        copied, problems, _pending = sync_once(store, share)
        assert copied == 0 and "is full" in problems[0]
        assert sorted(share.rglob("*")) == sorted([day, other, share / "empty-before"])  # what was there, kept
        assert other.read_bytes() == b"another room's recording"
        other.unlink()
        assert sync_once(store, share)[0] == 0 and day.is_dir()  # an empty day folder that was there stays
        assert store.shared_path(sid) is None


def test_pending_copies_survive_a_restart_and_the_command_lists_and_copies_them(clinic, tmp_path, capsys):
    db, local, _sha, sid = clinic
    share = tmp_path / "share"  # not there yet: the first program ends with the copy pending
    copier = ShareCopier(_open(db), share, retry_first_s=60).start()
    wait_for(lambda: copier.passes >= 1, 10, "the first pass")
    assert copier.stop() and copier.status.pending == 1
    opts = ["--store", str(db), "--clinic-recordings", str(share)]
    assert main(["recording", "sync", "--list", *opts]) == 1
    assert f"session 1 of the course (record no. {sid}): {local}" in capsys.readouterr().out
    assert main(["recording", "sync", "--once", *opts]) == 1
    assert "not reachable" in capsys.readouterr().out
    share.mkdir()
    assert main(["recording", "sync", "--once", *opts]) == 0
    assert "1 recording copied" in capsys.readouterr().out
    assert main(["recording", "sync", "--list", *opts]) == 0
    with ClinicStore.open(db, training=False) as store:
        assert store.shared_path(sid) == share / local.parent.name / local.name


def test_sync_without_a_share_is_a_sentence(clinic, capsys):
    db = clinic[0]
    assert main(["recording", "sync", "--once", "--store", str(db)]) == 2
    assert "No recordings share is set" in capsys.readouterr().err


def test_a_saved_recording_is_queued_and_wakes_the_copier(clinic, tmp_path):
    """recording_saved (what the visit calls after linking) queues the recording for this workstation and wakes a
    copier waiting out a long delay, so a share that came back is used at once."""
    db, local, _sha, sid = clinic
    share = tmp_path / "share"
    copier = ShareCopier(_open(db), share, retry_first_s=600).start()  # would wait 10 min on its own
    try:
        wait_for(lambda: copier.passes >= 1, 10, "the first pass")
        share.mkdir()
        with ClinicStore.open(db, training=False) as store:
            recording_saved(store, sid)
        wait_for(lambda: copier.status.pending == 0 and copier.status.problem is None, 10, "the woken copy")
    finally:
        copier.stop()
    with ClinicStore.open(db, training=False) as store:
        assert store.shared_path(sid) is not None


def test_the_headless_runner_ends_normally_with_the_share_down_and_its_copy_is_made_later(tmp_path):
    """The runner's visit saves, queues its recording in the (kept) training store, says in one line that the share
    is down, and exits as the scenario says; `recording sync --training` copies it once the share is there."""
    from workstation.session.runner import EXIT_COMPLETED, EXIT_INTERLOCK, run_scenario
    from workstation.session.scenario import load_scenario

    scenarios = Path(__file__).resolve().parents[1] / "seeds" / "scenarios"
    store, share, lines = tmp_path / "training.sqlite3", tmp_path / "share", []
    result = run_scenario(load_scenario(scenarios / "pih-gentle-needling.toml"), tmp_path / "rec", store_path=store,
                          out=lines.append, share=share)
    # The exit code is the session's own (completed here; an interlock if the machine is too loaded for the
    # heartbeat): the runner printed it before the share's line, and the share being down did not change it.
    outcome = next(line for line in lines if line.startswith("outcome:"))
    assert outcome.endswith(f"exit code {result.exit_code}") and result.exit_code in (EXIT_COMPLETED, EXIT_INTERLOCK)
    said = [line for line in lines if line.startswith("share:")]
    assert len(said) == 1 and "not reachable" in said[0] and "recording sync --training" in said[0], said
    assert lines[-1] == said[0]
    with ClinicStore.open(store, training=True) as s:
        assert [p for _sid, p, _sha in s.recordings_to_share(HOST)] == [result.recording]
    share.mkdir()
    assert main(["recording", "sync", "--once", "--training", "--store", str(store), "--clinic-recordings",
                 str(share)]) == 0
    copy = share / result.recording.parent.name / result.recording.name
    assert check_checksum(copy).intact and sha256_of(copy) == result.sha256


def test_a_part_file_left_by_an_interrupted_copy_of_this_workstation_is_replaced(clinic, tmp_path):
    db, local, _sha, _sid = clinic
    share = tmp_path / "share"
    day = share / local.parent.name
    day.mkdir(parents=True)
    stale = day / f".{local.name}.{HOST}.999999.part"
    stale.write_bytes(b"half a recording")
    other = day / f".{local.name}.another-room.5.part"  # another workstation's: not ours to remove
    other.write_bytes(b"x")
    with ClinicStore.open(db, training=False) as store:
        assert sync_once(store, share)[:2] == (1, [])
    assert not stale.exists() and other.exists()


def test_listing_what_is_still_to_copy_writes_nothing(clinic, tmp_path, capsys):
    """`recording sync --list` only reads: a recording here that nobody queued yet is listed as this workstation's
    to copy, and the store is left as found (its queue mark is made by a copier's pass, never by the listing)."""
    db, local, _sha, sid = clinic
    share = tmp_path / "share"
    share.mkdir()
    queued = "SELECT copy_from FROM recordings WHERE session_id = ?"
    with sqlite3.connect(db) as c:
        assert c.execute(queued, (sid,)).fetchone() == (None,)
    assert main(["recording", "sync", "--list", "--store", str(db), "--clinic-recordings", str(share)]) == 1
    assert f"(record no. {sid}): {local}" in capsys.readouterr().out
    with sqlite3.connect(db) as c:
        assert c.execute(queued, (sid,)).fetchone() == (None,)
    with ClinicStore.open(db, training=False) as store:  # a copier's pass queues it and copies it
        assert sync_once(store, share)[0] == 1
