"""A fresh tester's findings in the recordings' integrity checks: another recording's .sig (or .sha256) beside an
intact recording is not a tamper alarm; a valid .sig proves the file whatever its .sha256 is; a program killed between
closing a recording and signing it is not told "not copied with it". Real recordings, real sidecars, the command
line in real processes, real SIGKILLs."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_recording import write_session
from test_signature_gaps import _flip_one_byte, cli

from workstation import places
from workstation.checksum import sha256_of, write_checksum
from workstation.recording.format import checksum_path, signature_path
from workstation.recording.summary import check_checksum

REPO = Path(__file__).resolve().parents[1]
MAIN = [sys.executable, str(REPO / "main.py")]


@pytest.fixture()
def two(tmp_path) -> tuple[Path, Path]:
    """Two intact, signed recordings of two sessions, in one day folder."""
    return write_session(tmp_path / "rec", 0.5), write_session(tmp_path / "rec", 0.5)


# ---- 1: another recording's signature beside an intact recording ---------------------------------------------------
def test_another_recordings_signature_is_said_to_belong_to_another_file_not_modified(two, tmp_path):
    mine, other = two
    shutil.copy(signature_path(other), signature_path(mine))
    check = check_checksum(mine)
    assert check.intact is False  # its own signature is missing: not proven
    assert "MODIFIED" not in check.text and "changed after" not in check.text, check.text
    assert f"is the signature of another file ({other.name}" in check.text, check.text
    assert f"not of this recording (session {mine.stem})" in check.text
    assert "own signature is missing" in check.text
    for command in ("inspect", "verify"):
        r = cli(command, str(mine), cwd=tmp_path)
        said = r.stdout + r.stderr
        assert "MODIFIED AFTER SIGNING" not in said and "signature of another file" in said, (command, said)
        assert "Traceback" not in said
    assert cli("verify", str(mine), cwd=tmp_path).returncode == 1


def test_both_sidecars_of_another_recording_are_not_a_tamper_alarm(two):
    mine, other = two
    shutil.copy(signature_path(other), signature_path(mine))
    shutil.copy(checksum_path(other), checksum_path(mine))
    check = check_checksum(mine)
    assert check.intact is False
    assert "DOES NOT MATCH" not in check.text and "MODIFIED" not in check.text, check.text
    assert f"is the checksum of another file ({other.name})" in check.text
    assert "is the signature of another file" in check.text


def test_a_changed_recording_under_another_name_is_still_modified_after_signing(two, tmp_path):
    """The signature names the recording by its session (`<session_uuid>.h5`, also inside the file): a file renamed
    and changed is still this recording's, changed; only a signature naming another session is another file's."""
    mine, _other = two
    renamed = tmp_path / "renamed.h5"
    shutil.copy(mine, renamed)
    shutil.copy(signature_path(mine), signature_path(renamed))
    _flip_one_byte(renamed)
    write_checksum(renamed, checksum_path(renamed))
    check = check_checksum(renamed)
    assert check.intact is False and "MODIFIED AFTER SIGNING" in check.text and f"(as {mine.name})" in check.text
    _flip_one_byte(mine)  # and in place, with its .sha256 rewritten: the classic attack
    write_checksum(mine, checksum_path(mine))
    check = check_checksum(mine)
    assert check.intact is False and "MODIFIED AFTER SIGNING" in check.text and "another file" not in check.text


# ---- 2: a valid signature proves the file whatever its .sha256 ----------------------------------------------------
@pytest.mark.parametrize("how", ["empty", "missing", "garbage", "unreadable", "wrong"])
def test_a_valid_signature_proves_the_file_and_names_the_sidecar_at_fault(two, tmp_path, how):
    rec = two[0]
    saved = checksum_path(rec)
    digest = sha256_of(rec)
    if how == "empty":
        saved.write_text("")
    elif how == "missing":
        saved.unlink()
    elif how == "garbage":
        saved.write_bytes(b"\x00\xff not a checksum\n")
    elif how == "wrong":  # a tester: another SHA-256 written into it, and verify said "ok", exit 0 (F9)
        saved.write_text(f"{'0' * 64}  {rec.name}\n")
    else:  # a .sha256 that exists and cannot be read: on Linux /proc/self/mem reads as an I/O error, even for root
        if not Path("/proc/self/mem").exists():
            pytest.skip("needs Linux's /proc")
        saved.unlink()
        saved.symlink_to("/proc/self/mem")
    check = check_checksum(rec)
    assert check.intact is True, check.text
    assert "signed by workstation" in check.text and "intact" in check.text and "proves" in check.text
    words = {"empty": "is empty or holds no SHA-256", "missing": "is missing", "garbage": "is empty or holds no SHA-256",
             "unreadable": "cannot be read", "wrong": "does not match it: that checksum file was changed"}[how]
    assert check.sidecar_wrong
    assert f"{saved.name} {words}" in check.text, check.text
    assert digest in check.text  # what to write back
    assert "cannot be proven" not in check.text and "cannot be checked" not in check.text
    r = cli("verify", str(rec), cwd=tmp_path)
    assert r.returncode == 0 and f"{saved.name} {words}" in r.stdout, r.stdout + r.stderr
    # the recording is intact (exit 0), but the line is a warning, not "ok": its checksum file was tampered with
    assert r.stdout.splitlines()[0].startswith("WARN  .sha256: "), r.stdout


def test_a_changed_file_with_its_sha256_missing_is_found_by_its_signature(two):
    rec = two[0]
    checksum_path(rec).unlink()
    _flip_one_byte(rec)
    check = check_checksum(rec)
    assert check.intact is False and "MODIFIED AFTER SIGNING" in check.text and "is missing" in check.text


@pytest.mark.parametrize("saved", ["", "\x00" * 40, "3f2a  cut", "not a checksum\n"])
def test_an_empty_sha256_without_a_signature_still_cannot_be_checked_and_says_signature_missing(two, tmp_path, saved):
    """An empty or cut .sha256 and no .sig beside a recording made to be signed: SIGNATURE MISSING, as with no .sha256
    or a whole one (a fresh tester of issue 12: it said only "cannot be checked"; an empty .sha256 is what a crash
    while closing left in older versions)."""
    rec = two[0]
    checksum_path(rec).write_text(saved)
    signature_path(rec).unlink()
    check = check_checksum(rec)
    assert check.intact is None and "is empty" in check.text and "cannot be checked" in check.text
    assert "SIGNATURE MISSING: the file cannot be proven unchanged" in check.text, check.text
    assert "holds no SHA-256: cut short while being written" in check.text and "the checksum and before signing" not in check.text
    for command in ("inspect", "verify"):
        r = cli(command, str(rec), cwd=tmp_path)
        assert "SIGNATURE MISSING" in r.stdout + r.stderr and "Traceback" not in r.stdout + r.stderr, (command, r)
    assert cli("verify", str(rec), cwd=tmp_path).returncode == 1


def test_an_unreadable_sha256_without_a_signature_is_not_called_cut_short(two):
    """A third fresh tester of issue 12: a .sha256 that could not be read was explained as "cut short while being
    written". On Linux /proc/self/mem reads as an I/O error, even for root."""
    if not Path("/proc/self/mem").exists():
        pytest.skip("needs Linux's /proc")
    rec = two[0]
    checksum_path(rec).unlink()
    checksum_path(rec).symlink_to("/proc/self/mem")
    signature_path(rec).unlink()
    check = check_checksum(rec)
    assert check.intact is None and "SIGNATURE MISSING" in check.text, check.text
    assert "cannot be read" in check.text and "cut short" not in check.text, check.text


# ---- 3: killed between closing the recording and signing it --------------------------------------------------------
KILL_AT = {  # what the recorder calls, replaced in the child by: do it (or not) and SIGKILL the process
    "before_checksum": "writer.write_checksum = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)",
    "before_signature": "writer.sign = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)",
    "while_writing_checksum": ("real = checksum.os.replace\n"
                               "checksum.os.replace = lambda a, b: os.kill(os.getpid(), signal.SIGKILL) "
                               "if str(b).endswith('.sha256') else real(a, b)"),
}


def _killed_recording(folder: Path, at: str) -> Path:
    """Record a session in a child process that is killed with SIGKILL at `at`, after the file was closed."""
    code = (f"import os, signal, sys\nsys.path.insert(0, {str(REPO / 'tests')!r})\n"
            "from workstation import checksum\nfrom workstation.recording import writer\n"
            f"{KILL_AT[at]}\n"
            "from helpers_recording import write_session\n"
            f"write_session(__import__('pathlib').Path({str(folder)!r}), 0.5)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    (rec,) = folder.glob("*/*.h5")
    return rec


def test_killed_before_the_checksum_outside_the_recordings_folder_says_both_possibilities(tmp_path):
    rec = _killed_recording(tmp_path / "training", "before_checksum")
    assert not checksum_path(rec).exists() and not signature_path(rec).exists()
    check = check_checksum(rec)
    assert check.intact is None and check.text.startswith("SIGNATURE MISSING: the file cannot be proven unchanged")
    assert "the recorder closed the file at" in check.text
    assert "either the program stopped after closing it and before writing them" in check.text, check.text
    assert "or the file was copied or moved here without them" in check.text


def test_killed_before_the_checksum_in_the_recordings_folder_says_the_program_stopped(tmp_path):
    rec = _killed_recording(places.recordings_dir(), "before_checksum")
    check = check_checksum(rec)
    assert check.intact is None and "SIGNATURE MISSING" in check.text
    assert "the program most likely stopped after closing it and before writing them" in check.text, check.text
    assert "not copied with it" not in check.text and "copied or moved here" not in check.text
    r = cli("inspect", str(rec), cwd=tmp_path)
    assert "most likely stopped" in r.stdout and "Traceback" not in r.stderr, r.stdout + r.stderr


def test_killed_while_writing_the_checksum_is_said_from_its_temporary_file(tmp_path):
    rec = _killed_recording(tmp_path / "elsewhere", "while_writing_checksum")
    assert not checksum_path(rec).exists() and list(rec.parent.glob(f".{rec.name}.sha256.*.tmp"))
    check = check_checksum(rec)
    assert "the program stopped while writing them" in check.text and "never signed" in check.text, check.text
    assert "copied" not in check.text


def test_killed_between_the_checksum_and_the_signature_says_both_possibilities(tmp_path):
    rec = _killed_recording(tmp_path / "rec", "before_signature")
    assert checksum_path(rec).is_file() and not signature_path(rec).exists()
    check = check_checksum(rec)
    assert check.intact is False and "SIGNATURE MISSING" in check.text
    assert "the program stopped after writing the checksum and before signing" in check.text, check.text
    assert (f"or the disk had no room left for {signature_path(rec).name}, or it was deleted or not copied with it"
            in check.text), check.text
