"""Signed recordings: the recorder signs each closed file's SHA-256 with the workstation's Ed25519 key; a byte changed
(even with the .sha256 rewritten to match), a signature edited, or another workstation's key is found. Real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_recording import write_session

from workstation.checksum import sha256_of, write_checksum
from workstation.keys import keys_dir, public_key_text, signing_key
from workstation.recording import signature
from workstation.recording.format import checksum_path
from workstation.recording.summary import check_checksum

REPO = Path(__file__).resolve().parents[1]


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def recording(tmp_path) -> Path:
    return write_session(tmp_path, 1.0)


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_closed_recording_is_signed_by_this_workstation(recording):
    body = json.loads(signature.signature_path(recording).read_text())
    assert body["format"] == signature.FORMAT and body["file"] == recording.name
    assert body["sha256"] == sha256_of(recording)
    assert body["public_key_ed25519"] == public_key_text(signing_key())
    check = check_checksum(recording)
    assert check.intact is True
    assert "SHA-256 matches; signed by workstation" in check.text and check.text.endswith(", intact")


def test_one_byte_changed_with_the_checksum_rewritten_is_still_found(recording):
    _flip_one_byte(recording)
    assert check_checksum(recording).intact is False  # the .sha256 alone finds it
    write_checksum(recording, checksum_path(recording))  # whoever edits the file rewrites the .sha256 too
    check = check_checksum(recording)
    assert check.intact is False
    assert "SHA-256 matches" in check.text and "MODIFIED AFTER SIGNING" in check.text


@pytest.mark.parametrize("field", ["sha256", "workstation", "signed_at_utc", "signature_ed25519"])
def test_an_edited_signature_file_is_found(recording, field):
    sig = signature.signature_path(recording)
    body = json.loads(sig.read_text())
    body[field] = body[field][:-2] + ("00" if not body[field].endswith("00") else "11")
    sig.write_text(json.dumps(body))
    check = check_checksum(recording)
    assert check.intact is False and ("changed after signing" in check.text or "MODIFIED" in check.text)


def test_a_recording_re_signed_with_another_key_is_untrusted_until_its_key_is_listed(recording, tmp_path,
                                                                                         monkeypatch):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    forger = Ed25519PrivateKey.generate()
    monkeypatch.setattr(signature, "signing_key", lambda: forger)
    monkeypatch.setattr(signature, "workstation_name", lambda: "room-9")
    _flip_one_byte(recording)
    digest = write_checksum(recording, checksum_path(recording))
    signature.sign(recording, digest)
    monkeypatch.undo()
    check = check_checksum(recording)
    assert check.intact is False and "a key this workstation does not know" in check.text
    (keys_dir() / signature.TRUSTED_FILE).write_text(f"{public_key_text(forger)} room-9\n")
    try:
        assert check_checksum(recording).intact is True
    finally:
        (keys_dir() / signature.TRUSTED_FILE).unlink()


def test_garbage_signature_and_unsigned_files_say_so(recording):
    sig = signature.signature_path(recording)
    sig.write_bytes(b"\xff\x00 not json")
    assert check_checksum(recording).intact is False
    assert "is not a Cicatrix signature" in check_checksum(recording).text
    sig.unlink()
    check = check_checksum(recording)  # a recording made to be signed (test_signature_gaps: older ones)
    assert check.intact is False and "SIGNATURE MISSING" in check.text


def test_the_tools_say_who_signed(recording):
    run = [sys.executable, str(REPO / "main.py")]
    out = subprocess.run(run + ["inspect", str(recording)], capture_output=True, text=True, timeout=60).stdout
    assert "signed by workstation" in out and "intact" in out
    _flip_one_byte(recording)
    write_checksum(recording, checksum_path(recording))
    for cmd in (["inspect", str(recording)], ["verify", str(recording)]):
        r = subprocess.run(run + cmd, capture_output=True, text=True, timeout=60)
        assert "MODIFIED AFTER SIGNING" in r.stdout + r.stderr, (cmd, r.stdout, r.stderr)
    r = subprocess.run(run + ["verify", str(recording)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    pub = subprocess.run(run + ["keys", "public"], capture_output=True, text=True, timeout=60)
    assert pub.returncode == 0 and pub.stdout.split()[0] == public_key_text(signing_key())


@pytest.mark.parametrize("new_name", ["renamed.h5", "copy of session.h5"])
def test_a_byte_identical_copy_under_another_name_verifies_and_says_where_from(recording, tmp_path, new_name):
    """The signature covers the bytes (the session's id and metadata inside them), not the file's name."""
    copy = tmp_path / "elsewhere" / new_name
    copy.parent.mkdir()
    copy.write_bytes(recording.read_bytes())
    for src, dst in ((checksum_path(recording), checksum_path(copy)),
                     (signature.signature_path(recording), signature.signature_path(copy))):
        dst.write_bytes(src.read_bytes())
    check = check_checksum(copy)
    assert check.intact is True, check.text
    assert f"copied/renamed from {recording.name}" in check.text and "MODIFIED" not in check.text
    assert "copied/renamed" not in check_checksum(recording).text  # the original keeps its own name
    _flip_one_byte(copy)  # the copy is still held to its bytes
    write_checksum(copy, checksum_path(copy))
    assert check_checksum(copy).intact is False and "MODIFIED AFTER SIGNING" in check_checksum(copy).text


def test_a_closed_recording_copied_without_its_checksum_and_signature_says_so(recording, tmp_path):
    """Only the .h5 of a closed, signed recording copied elsewhere: the file was closed by the recorder (it has its
    end time), so the words say what is missing beside it, not "not closed by the recorder" (fresh tester of 12)."""
    import shutil

    alone = tmp_path / "copied" / recording.name
    alone.parent.mkdir()
    shutil.copy2(recording, alone)
    check = check_checksum(alone)
    assert check.intact is None
    # fourth fresh tester: the words the docs give for it ("SIGNATURE MISSING"), and every command warns of it
    assert check.text.startswith("SIGNATURE MISSING: the file cannot be proven unchanged (no ")
    assert "not closed" not in check.text and "the recorder closed the file at" in check.text
    for command in ("export", "audit", "inspect"):
        args = ["export", "--csv", str(tmp_path / "csv"), str(alone)] if command == "export" else [command, str(alone)]
        done = subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                              timeout=120, cwd=ROOT)
        said = done.stdout + done.stderr
        assert "SIGNATURE MISSING" in said and "Traceback" not in said, (command, said[-1500:])
        if command != "inspect":
            assert f"WARNING: {alone.name} is not proven intact" in said, (command, said[-1500:])


def test_a_wrong_checksum_file_beside_a_signed_intact_recording_is_not_a_tamper_alarm(recording):
    """Fourth fresh tester of issue 12: the .sha256 replaced (zeros, another recording's) beside an intact signed file
    gave "SHA-256 DOES NOT MATCH …: the file changed after it was closed; signed by …, intact": a false tamper
    alarm that contradicted itself. The signature covers the file's own SHA-256: the checksum file is what changed."""
    for wrong in ("0" * 64, sha256_of(Path(__file__))):
        checksum_path(recording).write_text(f"{wrong}  {recording.name}\n")
        check = check_checksum(recording)
        assert check.intact is True and "intact" in check.text and "changed after it was closed" not in check.text
        assert f"but {checksum_path(recording).name} does not match it" in check.text
        assert sha256_of(recording) in check.text  # what to write back
    checksum_path(recording).write_text(f"{'0' * 64}  {recording.name}\n")  # and the file changed too: an alarm
    _flip_one_byte(recording)
    assert check_checksum(recording).intact is False


def test_a_file_without_an_end_time_and_without_a_checksum_was_not_closed_by_the_recorder(tmp_path):
    import h5py

    path = tmp_path / "open.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "cicatrix-session"
    assert "not closed by the recorder" in check_checksum(path).text
