"""`patient export ID --out DIR` and `verify FILE` reach the clinic store's export_patient and verify_recording;
recordings are found through the recordings root the store records, wherever the program is started."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from helpers_identity import identity_shown

from main import main
from workstation import places
from workstation.protocols import load_library
from workstation.store import ClinicStore, Identity, Treatment

PSEUDONYM = "CX-00C0FFEE"
ROOT = Path(__file__).resolve().parents[1]


def _a_real_recording(scratch: Path, to: Path) -> Path:
    """A short closed recording, copied to `to` with its signature (its .sha256 is the caller's)."""
    import shutil

    from helpers_recording import write_session

    from workstation.recording.format import signature_path

    src = write_session(scratch, 0.2)
    shutil.copyfile(src, to)
    shutil.copyfile(signature_path(src), signature_path(to))
    return to


@pytest.fixture()
def clinic(tmp_path, monkeypatch):
    """A clinic store in the default place with one session whose recording, .sha256 and report are on disk."""
    root = places.recordings_dir()
    rec = root / "2026-03-02" / "0b5e-uuid.h5"
    rec.parent.mkdir(parents=True)
    _a_real_recording(tmp_path / "src", rec)  # verify opens it too: unchanged bytes no tool can read are not intact
    sha = hashlib.sha256(rec.read_bytes()).hexdigest()
    rec.with_name(rec.name + ".sha256").write_text(f"{sha}  {rec.name}\n")
    rec.with_name("0b5e-uuid-report.pdf").write_bytes(b"%PDF-1.4 stand-in")
    with ClinicStore.open(training=False, recordings_root=root) as store:
        p = store.create_patient(PSEUDONYM, Identity("Smithson", "Alexandra", date(1990, 5, 4), "07700 900123"))
        area = store.add_area(p.id, "left cheek", "face", "hypopigmented_scar", 3.5, "III")
        course = store.create_course(p.id, load_library().get("hypopigmented-scar-light"), [area.id],
                                     date(2026, 3, 1))
        sid = store.add_session(course.id, date(2026, 3, 2), device_model="UVB-308")
        store.add_treatment(sid, Treatment(area.id, "light", dose_mj_cm2=210))
        store.link_recording(sid, rec, sha)
        assert store.recording(sid)[0] == "2026-03-02/0b5e-uuid.h5"
    monkeypatch.chdir(tmp_path)  # started from an unrelated folder
    return rec


def test_patient_export_writes_a_pseudonymous_bundle(clinic, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["patient", "export", PSEUDONYM, "--out", str(out)]) == 0
    bundle = out / PSEUDONYM
    doc = json.loads((bundle / "patient.json").read_text())
    (session,) = doc["courses"][0]["sessions"]
    assert session["bundle_files"] == ["recordings/2026-03-02/0b5e-uuid.h5", "recordings/2026-03-02/0b5e-uuid.h5.sha256",
                                       "recordings/2026-03-02/0b5e-uuid.h5.sig",
                                       "recordings/2026-03-02/0b5e-uuid-report.pdf"]
    assert (bundle / session["bundle_files"][0]).read_bytes() == clinic.read_bytes()
    assert doc["problems"] == [] and doc["pseudonym"] == PSEUDONYM
    everything = "".join(p.read_text(errors="replace") for p in bundle.rglob("*") if p.is_file())
    log = (places.log_dir() / "cicatrix.log").read_text()
    for text in (everything, log):
        assert identity_shown(text, names=("Smithson", "Alexandra"), born=date(1990, 5, 4),
                              contact="07700 900123") == []
    assert "5 files" in capsys.readouterr().out
    assert main(["patient", "export", PSEUDONYM, "--out", str(out)]) == 2  # never overwritten
    assert "already exists" in capsys.readouterr().err


def test_patient_export_refusals_are_sentences(clinic, tmp_path, capsys):
    assert main(["patient", "export", "CX-NOBODY", "--out", str(tmp_path / "o")]) == 2
    assert "No patient has the pseudonym CX-NOBODY" in capsys.readouterr().err
    assert main(["patient", "export", "Alexandra Smithson", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "pseudonym typed is not valid" in err and "Smithson" not in err  # a name typed there is not repeated
    assert main(["patient", "export", PSEUDONYM, "--out", str(tmp_path / "o"), "--store",
                 str(tmp_path / "none.sqlite3")]) == 2
    assert "There is no clinic store at" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite3").exists()


def test_patient_export_reports_a_changed_recording_and_writes_the_rest(clinic, tmp_path, capsys):
    clinic.write_bytes(b"changed after it was indexed")
    assert main(["patient", "export", PSEUDONYM, "--out", str(tmp_path / "o")]) == 1
    assert "does not match the SHA-256 in the store" in capsys.readouterr().out
    assert (tmp_path / "o" / PSEUDONYM / "patient.json").is_file()


def test_verify_checks_the_sidecar_and_the_store_index(clinic, tmp_path, capsys):
    assert main(["verify", str(clinic)]) == 0
    out = capsys.readouterr().out
    assert "ok    .sha256: SHA-256 matches" in out and "ok    store: session 1" in out
    clinic.write_bytes(b"tampered")
    assert main(["verify", str(clinic)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  .sha256" in out and "FAIL  store: session 1" in out
    loose = tmp_path / "loose.h5"  # a recording never indexed, never closed (bytes that are none: exit 2, test_s19)
    import h5py

    with h5py.File(loose, "w") as f:
        f.attrs["format"] = "cicatrix-session"
    assert main(["verify", str(loose)]) == 1
    assert "does not index this recording" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "absent.h5")]) == 2
    assert "is not a file" in capsys.readouterr().err


def test_session_record_refuses_a_file_name_and_says_it_takes_a_folder(tmp_path, capsys):
    from workstation.cli import build_parser

    help_text = build_parser()._subparsers._group_actions[0].choices["session"].format_help()
    assert "the FOLDER to record into, not a file name" in " ".join(help_text.split())
    assert main(["session", "--simulate", "--scenario", "combined-uneventful", "--record",
                 str(tmp_path / "x.H5")]) == 2
    assert "--record takes a folder, not a file name" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_version_comes_from_the_package_metadata(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.split()[-1] == version("cicatrix")


def test_the_recordings_root_follows_a_moved_folder_only(clinic, tmp_path, capsys):
    """Recordings moved to another disk, the old (now empty) folder left behind: the new place in the settings is
    used because it holds the indexed recordings and the old root holds none. Reading commands use it for
    themselves and never change the store; a writing open adopts it. A folder without the recordings is never
    adopted, even when the recorded one is gone."""
    other = tmp_path / "other"
    other.mkdir()
    with ClinicStore.open(training=False, recordings_root=other) as store:
        assert store.recordings_root == places.recordings_dir()
    moved = tmp_path / "disk2" / "recordings"
    moved.parent.mkdir()
    places.recordings_dir().rename(moved)
    places.recordings_dir().mkdir()  # the old folder still exists, empty
    places.settings_file().parent.mkdir(parents=True, exist_ok=True)  # the keys folder may be there
    places.settings_file().write_text(f"[paths]\nrecordings = '{moved}'\n")
    assert main(["verify", str(moved / "2026-03-02" / "0b5e-uuid.h5")]) == 0
    assert "ok    store: session 1" in capsys.readouterr().out
    with ClinicStore.open(training=False) as store:
        assert store.recordings_root == places.recordings_dir()  # verify only reads
    with ClinicStore.open(training=False, recordings_root=other) as store:
        assert store.recordings_root == places.recordings_dir()  # an empty folder is not adopted
    with ClinicStore.open(training=False, recordings_root=moved) as store:
        assert store.recordings_root == moved
    with ClinicStore.open(training=False) as store:
        assert store.recordings_root == moved


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    """The program in its own process, as the tester ran it (the user folders of this test through XDG_*)."""
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_reading_commands_never_change_the_store(clinic, tmp_path):
    """`patient export --recordings /typo` used to rewrite the store's root and print a raw logger line."""
    typo = tmp_path / "typo"
    done = _cli("patient", "export", PSEUDONYM, "--out", str(tmp_path / "out"), "--recordings", str(typo),
                cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr and "workstation." not in done.stderr
    with ClinicStore.open(training=False) as store:
        assert store.recordings_root == places.recordings_dir()
    assert _cli("patient", "export", PSEUDONYM, "--out", "", cwd=tmp_path).returncode == 2  # not the current folder
    assert not (tmp_path / PSEUDONYM).exists()


def test_verify_fails_when_the_store_given_does_not_index_or_does_not_exist(clinic, tmp_path):
    missing = _cli("verify", str(clinic), "--store", str(tmp_path / "typo.sqlite3"), cwd=tmp_path)
    assert missing.returncode == 2 and "There is no clinic store at" in missing.stderr and missing.stdout == ""
    assert not (tmp_path / "typo.sqlite3").exists()
    stranger = places.recordings_dir() / "2026-03-03" / "unindexed.h5"  # in the clinical folder, not indexed
    stranger.parent.mkdir()
    stranger.write_bytes(b"not indexed")
    stranger.with_name(stranger.name + ".sha256").write_text(
        f"{hashlib.sha256(b'not indexed').hexdigest()}  {stranger.name}\n")
    done = _cli("verify", str(stranger), cwd=tmp_path)
    assert done.returncode == 1, done.stdout
    assert "FAIL  store:" in done.stdout and "does not index this recording" in done.stdout
    outside = _a_real_recording(tmp_path / "src2", tmp_path / "training.h5")  # outside the clinic's folder
    outside.with_name("training.h5.sha256").write_text(
        f"{hashlib.sha256(outside.read_bytes()).hexdigest()}  training.h5\n")
    assert _cli("verify", str(outside), cwd=tmp_path).returncode == 0
    assert _cli("verify", str(outside), "--store", str(places.clinic_store_file()), cwd=tmp_path).returncode == 1


def test_store_set_recordings_root_after_moving_the_folder(clinic, tmp_path):
    moved = tmp_path / "disk2" / "recordings"
    moved.parent.mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    places.recordings_dir().rename(moved)
    places.recordings_dir().mkdir()  # the old folder is left, empty
    refused = _cli("store", "set-recordings-root", str(empty), cwd=tmp_path)
    assert refused.returncode == 2 and "The one recording this workstation (" in refused.stderr
    assert "indexes is not under" in refused.stderr
    assert _cli("store", "set-recordings-root", str(tmp_path / "nowhere"), cwd=tmp_path).returncode == 2
    done = _cli("store", "set-recordings-root", str(moved), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"-> {moved}; 1 of its 1 indexed recording found there" in done.stdout
    assert "set [paths] recordings" in done.stdout  # new recordings would still go to the old place
    with ClinicStore.open(training=False) as store:
        assert store.recordings_root == moved
    assert _cli("verify", str(moved / "2026-03-02" / "0b5e-uuid.h5"), cwd=tmp_path).returncode == 0
