"""A fresh tester's gaps in signed recordings (issue 13): a deleted .sig, the PDF report, the patient bundle, a key
claiming this workstation's name, garbage in trusted-workstations, and closed output pipes. Real files reopened with
h5py, the command line in real processes."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import h5py
import pytest
from helpers_recording import write_session

from workstation import places
from workstation.checksum import sha256_of, write_checksum
from workstation.keys import keys_dir, public_key_text, workstation_name
from workstation.recording import signature
from workstation.recording.format import SIGNATURE_EXPECTED, checksum_path, signature_path
from workstation.recording.summary import check_checksum

REPO = Path(__file__).resolve().parents[1]
MAIN = [sys.executable, str(REPO / "main.py")]
PSEUDONYM = "CX-00D15EA5"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*MAIN, *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture()
def recording(tmp_path) -> Path:
    return write_session(tmp_path / "made", 1.0)


@pytest.fixture()
def stripped(recording, tmp_path) -> Path:
    """The tester's attack: one byte changed, the .sha256 rewritten, the .sig deleted, the three copied elsewhere."""
    _flip_one_byte(recording)
    write_checksum(recording, checksum_path(recording))
    signature_path(recording).unlink()
    copy = tmp_path / "copy" / recording.name
    copy.parent.mkdir()
    shutil.copy2(recording, copy)
    shutil.copy2(checksum_path(recording), checksum_path(copy))
    return copy


def _as_if_recorded_before_signatures(path: Path) -> None:
    with h5py.File(path, "r+") as h5:
        del h5.attrs[SIGNATURE_EXPECTED]
    write_checksum(path, checksum_path(path))
    signature_path(path).unlink(missing_ok=True)


# ---- 6: a recording made to be signed must carry its signature --------------------------------------------------
def test_a_new_recording_says_it_is_signed_and_without_its_sig_is_not_intact(recording):
    with h5py.File(recording, "r") as h5:
        assert bool(h5.attrs[SIGNATURE_EXPECTED]) is True
    assert check_checksum(recording).intact is True
    signature_path(recording).unlink()
    check = check_checksum(recording)
    assert check.intact is False
    assert "SIGNATURE MISSING: the file cannot be proven unchanged" in check.text
    signature_path(recording).write_text("{not a signature")
    check = check_checksum(recording)
    assert check.intact is False and "SIGNATURE MISSING" in check.text and "is not a Cicatrix signature" in check.text


def test_a_recording_from_before_signatures_still_reads_not_signed(recording):
    _as_if_recorded_before_signatures(recording)
    with h5py.File(recording, "r") as h5:
        assert SIGNATURE_EXPECTED not in h5.attrs
    check = check_checksum(recording)
    assert check.intact is True and "not signed (recorded before signatures" in check.text
    assert "SIGNATURE MISSING" not in check.text


def test_the_tools_refuse_to_call_a_stripped_recording_intact(stripped, tmp_path):
    r = cli("verify", str(stripped), cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "SIGNATURE MISSING" in r.stdout and "FAIL" in r.stdout and "ok   .sha256" not in r.stdout
    for args in (["inspect", str(stripped)], ["audit", str(stripped)],
                 ["export", str(stripped), "--csv", str(tmp_path / "csv")]):
        r = cli(*args, cwd=tmp_path)
        assert "WARNING" in r.stdout and "SIGNATURE MISSING" in r.stdout, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr


def test_replay_warns_about_a_stripped_recording(stripped, qtbot, window):
    from PyQt6.QtCore import Qt

    window.start_page.replay_path.setText(str(stripped))
    qtbot.mouseClick(window.start_page.replay_button, Qt.MouseButton.LeftButton)
    view = window.replay
    qtbot.waitUntil(lambda: view.checksum is not None, timeout=30_000)
    assert view.checksum.intact is False and "SIGNATURE MISSING" in view.integrity.text()
    assert any(kind == "error" and "SIGNATURE MISSING" in text for kind, text in window.messages)
    assert view.source is not None  # still replayed, warned
    if shutil.which("pdftotext") is not None:  # and the report written from the replay says it too
        qtbot.mouseClick(view.report_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: getattr(view, "report_path", None) is not None, timeout=60_000)
        text = " ".join(subprocess.run(["pdftotext", str(view.report_path), "-"], capture_output=True,
                                       text=True).stdout.split())
        assert "WARNING: the recording" in text and "SIGNATURE MISSING" in text


# ---- 7: the PDF report checks like the other tools -------------------------------------------------------------
@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler's pdftotext")
def test_report_of_a_modified_recording_warns_on_stderr_and_in_the_pdf(recording, tmp_path):
    good = tmp_path / "good.pdf"
    r = cli("report", str(recording), "--out", str(good), cwd=tmp_path)
    assert r.returncode == 0 and "WARNING" not in r.stderr, r.stderr
    assert "WARNING" not in subprocess.run(["pdftotext", str(good), "-"], capture_output=True, text=True).stdout
    _flip_one_byte(recording)
    write_checksum(recording, checksum_path(recording))  # the .sha256 rewritten: only the signature finds it
    out = tmp_path / "a.pdf"
    r = cli("report", str(recording), "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0 and "report written" in r.stdout
    assert "WARNING" in r.stderr and "MODIFIED AFTER SIGNING" in r.stderr, r.stderr
    text = " ".join(subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True).stdout.split())
    assert "WARNING: the recording" in text and "MODIFIED AFTER SIGNING" in text
    assert "NOT PROVEN INTACT" in text


# ---- 8: the .sig travels with the recording --------------------------------------------------------------------
def _indexed_clinical_recording() -> Path:
    """A clinical recording in the default recordings folder, linked to a session of the default clinic store."""
    from workstation.protocols import load_library
    from workstation.store import ClinicStore, Identity, Treatment

    root = places.recordings_dir()
    rec = write_session(root, 1.0, mode="clinical")
    with ClinicStore.open(training=False, recordings_root=root) as store:
        p = store.create_patient(PSEUDONYM, Identity("Okonkwo", "Adaeze", date(1984, 2, 9), "07700 900456"))
        area = store.add_area(p.id, "left cheek", "face", "hypopigmented_scar", 3.5, "III")
        course = store.create_course(p.id, load_library().get("hypopigmented-scar-light"), [area.id],
                                     date(2026, 3, 1))
        sid = store.add_session(course.id, date(2026, 3, 2), device_model="UVB-308")
        store.add_treatment(sid, Treatment(area.id, "light", dose_mj_cm2=210))
        store.link_recording(sid, rec, sha256_of(rec))
    return rec


def test_patient_export_carries_the_signature_and_the_copy_verifies(tmp_path):
    rec = _indexed_clinical_recording()
    out = tmp_path / "usb"
    r = cli("patient", "export", PSEUDONYM, "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    copied = out / PSEUDONYM / "recordings" / rec.parent.name / rec.name
    assert signature_path(copied).read_bytes() == signature_path(rec).read_bytes()
    assert f"{signature_path(copied)}" in r.stdout
    r = cli("verify", str(copied), cwd=tmp_path)
    assert "signed by workstation" in r.stdout and ", intact" in r.stdout, r.stdout
    assert "not signed" not in r.stdout and "SIGNATURE MISSING" not in r.stdout


def test_stripping_the_attribute_too_is_found_by_the_store_index(tmp_path):
    """The limit of the attribute: whoever removes it as well gets "not signed (recorded before signatures)" from the
    file alone, but the clinic store indexed the SHA-256 at close, and verify compares with it."""
    rec = _indexed_clinical_recording()
    _as_if_recorded_before_signatures(rec)
    r = cli("verify", str(rec), cwd=tmp_path)
    assert r.returncode == 1, r.stdout
    assert "SHA-256 DOES NOT MATCH the index" in r.stdout


# ---- 12: a key claiming to be this workstation; garbage in trusted-workstations --------------------------------
def test_a_forged_key_claiming_this_workstation_is_named_as_such(recording, monkeypatch):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    forger = Ed25519PrivateKey.generate()
    monkeypatch.setattr(signature, "signing_key", lambda: forger)  # re-signed elsewhere, under this host's name
    _flip_one_byte(recording)
    signature.sign(recording, write_checksum(recording, checksum_path(recording)))
    monkeypatch.undo()
    check = check_checksum(recording)
    assert check.intact is False
    assert f"claims to be this workstation ({workstation_name()})" in check.text
    assert "is not signed with this workstation's key" in check.text and "forged" in check.text
    assert "add it to" not in check.text  # no advice to trust a forgery


def test_garbage_lines_in_trusted_workstations_are_named(recording, caplog):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = public_key_text(Ed25519PrivateKey.generate())
    listed = keys_dir() / signature.TRUSTED_FILE
    listed.write_text(f"# the clinic's workstations\n\n{other} room-2\nroom-3 deadbeef\n{other[:40]} short\n")
    try:
        with caplog.at_level(logging.WARNING, logger="workstation.recording.signature"):
            check = check_checksum(recording)
        assert check.intact is True  # this workstation's own signature: still intact, with the warning
        assert f"{listed} line 4 is not" in check.text and f"{listed} line 5 is not" in check.text
        assert "line 1" not in check.text and "line 2" not in check.text and "line 3" not in check.text
        assert sum(f"{listed} line" in r.getMessage() for r in caplog.records) == 2
        assert signature.trusted_keys()[other] == "room-2"
    finally:
        listed.unlink()


# ---- 12: closed output pipes end quietly -----------------------------------------------------------------------
def _store_with_trail(tmp_path: Path) -> Path:
    from workstation.store import ClinicStore, Identity

    path = tmp_path / "clinic.sqlite3"
    with ClinicStore.open(path, training=False) as store:
        for k in range(3):
            store.create_patient(f"CX-0000BEE{k}", Identity("Fairweather", "Imogen", date(1975, 1, 1 + k), ""))
    return path


@pytest.mark.parametrize("command", ["audit", "verify", "trail show"])
def test_a_closed_output_pipe_ends_quietly(recording, tmp_path, command):
    args = {"audit": ["audit", str(recording)], "verify": ["verify", str(recording)],
            "trail show": ["trail", "show", "--store", str(_store_with_trail(tmp_path))] if command == "trail show"
            else []}[command]
    proc = subprocess.Popen([*MAIN, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # `| head -0`: the reader is gone before anything is written
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "internal error" not in err
    assert "Exception ignored" not in err
