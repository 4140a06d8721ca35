"""Issue 17's fresh tester, items 1 and 3: the clinic's recordings share is recorded only once a file written there was
read back (the first verified copy, or `--clinic-share` after a write-and-read-back probe), never for a missing or
read-only folder; and `store set-recordings-root` refuses, in a sentence with exit 2 and nothing changed, the folders
a clinic would not mean (empty, blank, spaces around it, relative, a file, missing), for its own folder and for the
share alike. Both engines (`store_url`); real recordings, real folders."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from helpers_recording import write_session
from test_recording_share import _read_only

from main import main
from workstation.checksum import sha256_of
from workstation.protocols import load_library
from workstation.recording.share import sync_once
from workstation.store import ClinicStore


def _given(store_url: str) -> str:
    return store_url if "://" in store_url else str(Path(store_url))


@pytest.fixture()
def linked(store_url, tmp_path):
    """A store (either engine) with one real recording linked to a session, not yet copied anywhere."""
    root = tmp_path / "recordings"
    local = write_session(root, 0.3, mode="clinical")
    with ClinicStore.open(store_url, training=False, recordings_root=root) as store:
        p = store.create_patient("CX-00H17S01")
        area = store.add_area(p.id, "back", "back", "atrophic_scar", 4, "II")
        course = store.create_course(p.id, load_library().get("atrophic-scar-needling"), [area.id], date(2026, 1, 1))
        sid = store.add_session(course.id, date(2026, 1, 5))
        store.link_recording(sid, local, sha256_of(local))
    return store_url, root, local, sid


def test_a_missing_or_read_only_share_is_not_recorded_before_its_first_verified_copy(linked, tmp_path):
    store_url, _root, local, sid = linked
    missing, share = tmp_path / "mnt" / "not-mounted", tmp_path / "share"
    share.mkdir()
    with ClinicStore.open(store_url, training=False) as store:
        copied, problems, pending = sync_once(store, missing)
        assert (copied, pending) == (0, 1) and "not reachable" in problems[0]
        assert store.clinic_share() is None  # was: recorded before anything was copied there
        with _read_only(share):
            copied, problems, pending = sync_once(store, share)
            assert (copied, pending) == (0, 1) and ("read-only" in problems[0] or "permission" in problems[0])
            assert store.clinic_share() is None
        assert sync_once(store, share) == (1, [], 0)
        assert store.clinic_share() == share  # the first verified copy records it
        assert store.shared_path(sid) == share / local.parent.name / local.name


def test_a_first_copy_to_another_share_after_another_room_recorded_one_is_not_indexed(linked, tmp_path):
    store_url, _root, _local, sid = linked
    first, late = tmp_path / "share-a", tmp_path / "share-b"
    first.mkdir()
    late.mkdir()
    with ClinicStore.open(store_url, training=False) as store:
        assert store.adopt_clinic_share(first) == first  # another room's first verified copy came first
        assert store.adopt_clinic_share(late) == first  # the clinic's share is not replaced by a later first copy
        copied, problems, pending = sync_once(store, late)
        assert (copied, pending) == (0, 1) and "is not the clinic's" in problems[0]
        assert store.shared_path(sid) is None and list(late.iterdir()) == []


def test_clinic_share_is_refused_for_a_read_only_or_missing_folder_and_nothing_changes(linked, tmp_path, capsys):
    store_url, *_ = linked
    share = tmp_path / "share"
    share.mkdir()
    with _read_only(share):
        assert main(["store", "set-recordings-root", "--clinic-share", str(share), "--store", _given(store_url)]) == 2
    err = capsys.readouterr().err
    assert f"{share} is not taken as the clinic's recordings share" in err and "Nothing was changed" in err
    assert "read-only" in err or "permission denied" in err
    assert "Traceback" not in err and "Errno" not in err
    missing = tmp_path / "nas" / "gone"
    assert main(["store", "set-recordings-root", "--clinic-share", str(missing), "--store", _given(store_url)]) == 2
    assert f"{missing} does not exist" in capsys.readouterr().err
    with ClinicStore.open(store_url, training=False) as store:
        assert store.clinic_share() is None
    assert main(["store", "set-recordings-root", "--clinic-share", str(share), "--store", _given(store_url)]) == 0
    assert "a file written there read back the same" in capsys.readouterr().out
    assert [p.name for p in share.iterdir()] == []  # the probe file is removed
    with ClinicStore.open(store_url, training=False) as store:
        assert store.clinic_share() == share
    # a room whose settings still name another folder is told where its copies go now
    assert main(["recording", "sync", "--list", "--store", _given(store_url), "--clinic-recordings",
                 str(tmp_path / "old-share")]) == 1
    out = capsys.readouterr().out
    assert f"still to copy to {share}" in out and f"The clinic's recordings share is now {share}" in out
    assert f"settings still name {tmp_path / 'old-share'}" in out


@pytest.mark.parametrize("clinic_share", [False, True], ids=["own-folder", "clinic-share"])
def test_set_recordings_root_refuses_what_a_clinic_would_not_mean(linked, tmp_path, capsys, monkeypatch,
                                                                  clinic_share):
    store_url, root, local, sid = linked
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    (tmp_path / "relative").mkdir()
    monkeypatch.chdir(tmp_path)  # "" and "relative" would name folders here: refused all the same
    with ClinicStore.open(store_url, training=False) as store:
        before = (store.recordings_roots(), store.clinic_share())
    cases = {"": "the text is empty", "   ": "the text is empty", f" {root}": "begins or ends with a space",
             f"{root} ": "begins or ends with a space", "relative": "is a relative path",
             ".": "is a relative path", str(a_file): "is a file, not a folder",
             str(tmp_path / "nowhere"): "does not exist"}
    for text, words in cases.items():
        argv = ["store", "set-recordings-root", *(["--clinic-share"] if clinic_share else []), text,
                "--store", _given(store_url)]
        assert main(argv) == 2, text
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, (text, err)
        assert ("clinic's recordings share" if clinic_share else "this workstation's recordings folder") in err \
            or words in ("is a relative path",), (text, err)
    with ClinicStore.open(store_url, training=False) as store:
        assert (store.recordings_roots(), store.clinic_share()) == before
        assert store.recording_path(sid) == local


@pytest.mark.parametrize("argv", [["recording", "sync", "--once", "--clinic-recordings"],
                                  ["session", "--simulate", "--scenario", "combined-uneventful", "--share"]],
                         ids=["recording-sync", "session-share"])
def test_the_share_options_refuse_an_empty_or_relative_share_the_same_way(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "" would have been this folder: nothing may be written here
    for text, words in (("", "the text is empty"), ("  ", "the text is empty"), ("share", "is a relative path")):
        try:
            code = main([*argv, text])
        except SystemExit as exc:  # argparse's refusal
            code = exc.code
        assert code == 2, text
        err = capsys.readouterr().err
        assert words in err and "the clinic's recordings share" in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []
