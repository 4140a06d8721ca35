"""Signed recordings: at close the recorder signs the file's SHA-256 with the workstation's Ed25519 key
(workstation.keys), so whoever edits a recording and rewrites its .sha256 is still found out.

Beside `<uuid>.h5` and `<uuid>.h5.sha256` the recorder writes `<uuid>.h5.sig`, a JSON object:

| key | value |
|---|---|
| `format` | `"cicatrix-recording-signature-1"` |
| `file` | the recording's file name when signed (a byte-identical copy under another name verifies: "copied/renamed") |
| `sha256` | its SHA-256 (hex) at close |
| `signed_at_utc` | ISO 8601, UTC |
| `workstation` | the host name of the signing workstation |
| `public_key_ed25519` | the signer's raw public key (hex, 64 characters) |
| `signature_ed25519` | Ed25519 signature (hex) of `message()` below |

A signature is trusted when its public key is this workstation's own, or is listed (one `<hex key> <name>` a line)
in `trusted-workstations` in the keys folder: `main.py keys public` prints the line to add on the other
workstations of the clinic. A line that is not a key is named in a warning (log and the check's text), not skipped.

Every recording this version writes carries the root attribute `signature_expected = True` (format.py): such a file
without a readable signature is "SIGNATURE MISSING" (not intact); only files without the attribute (recorded before
signatures) read "not signed".

A valid signature whose SHA-256 is not the file's is one of two things, told apart by what it names (fresh tester of
the integrity checks): the signature of THIS recording, the file changed since ("MODIFIED AFTER SIGNING"), when its
`file` is this file's name or names this recording's session (`<session_uuid>.h5`, read from the file); or the
signature of ANOTHER file put beside it ("is the signature of another file"), when it names another session. The
latter proves nothing about this file, either way: its own signature is missing. When the file's session cannot be
read and the names differ, both are said.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import h5py

from workstation.checksum import atomic_write_text, sha256_saved_in
from workstation.keys import keys_dir, public_key_text, signing_key, verify_signature, workstation_name
from workstation.recording.format import SIGNATURE_EXPECTED, checksum_path, signature_path

FORMAT = "cicatrix-recording-signature-1"
TRUSTED_FILE = "trusted-workstations"
HEX = frozenset("0123456789abcdef")

log = logging.getLogger(__name__)

__all__ = ["FORMAT", "TRUSTED_FILE", "SignatureCheck", "check", "closed_on_full_disk", "message", "names_this_recording",
           "no_sidecars_words", "read_trusted", "session_uuid_of", "sign", "signature_expected", "signature_path",
           "stopped_while_writing", "trusted_keys"]


def message(file_name: str, sha256: str, signed_at_utc: str, workstation: str) -> bytes:
    """The bytes signed: every field a verifier shows, so none can be changed without breaking the signature."""
    return "\n".join((FORMAT, file_name, sha256, signed_at_utc, workstation)).encode("utf-8")


def sign(h5_path: Path, sha256: str) -> Path:
    """Sign `sha256` of the closed recording and write the .sig file atomically (whole or absent). Returns its path;
    OSError if it cannot be written (the recording and its .sha256 are kept; the file is then 'not signed')."""
    key = signing_key()
    at = datetime.now(UTC).isoformat(timespec="seconds")
    host = workstation_name()
    body = {"format": FORMAT, "file": h5_path.name, "sha256": sha256, "signed_at_utc": at, "workstation": host,
            "public_key_ed25519": public_key_text(key),
            "signature_ed25519": key.sign(message(h5_path.name, sha256, at, host)).hex()}
    target = signature_path(h5_path)
    atomic_write_text(target, json.dumps(body, indent=1) + "\n")
    return target


def read_trusted() -> tuple[dict[str, str], list[str]]:
    """Public key (hex) -> workstation name: this workstation's own and those listed in `trusted-workstations`;
    and one sentence per line of that file that is neither a key line, a comment (#) nor blank (each also logged)."""
    keys = {public_key_text(signing_key()): f"{workstation_name()} (this workstation)"}
    problems: list[str] = []
    listed = keys_dir() / TRUSTED_FILE
    try:
        lines = listed.read_text(encoding="utf-8", errors="replace").splitlines() if listed.is_file() else []
    except OSError as exc:
        lines = []
        problems.append(f"{listed} cannot be read ({exc.strerror or exc}): no other workstation is trusted")
    for number, line in enumerate(lines, start=1):
        words = line.split(maxsplit=1)
        if not words or line.lstrip().startswith("#"):
            continue
        key = words[0].lower()
        if len(key) == 64 and set(key) <= HEX:
            keys[key] = words[1].strip() if len(words) > 1 else "a trusted workstation"
        else:
            problems.append(f"{listed} line {number} is not '<64 hex digits of a public key> <name>' and was "
                            "ignored")
    for problem in problems:
        log.warning("trusted workstations: %s", problem)
    return keys, problems


def trusted_keys() -> dict[str, str]:
    """Public key (hex) -> workstation name (see `read_trusted`)."""
    return read_trusted()[0]


def signature_expected(h5_path: Path) -> bool | None:
    """True when the recording says it was made to be signed (root attribute `signature_expected`), or when an HDF5
    file's attributes cannot be read (it cannot prove it predates signatures); False for a readable recording without
    the attribute (recorded before signatures); None for a file that is not HDF5 at all (no recording: every reader
    refuses it)."""
    try:
        if not h5py.is_hdf5(h5_path):
            return None
    except OSError:
        return True
    value = _root_attr(h5_path, SIGNATURE_EXPECTED)
    return True if value is _UNREADABLE else bool(value)


def closed_on_full_disk(h5_path: Path) -> bool:
    """Whether the recording's session closed it after the disk filled (closing attribute `closed_on_full_disk`):
    then a missing .sha256 or .sig most likely found no room. False when it says not, or cannot be read."""
    value = _root_attr(h5_path, "closed_on_full_disk")
    return value is not _UNREADABLE and bool(value)


def session_uuid_of(h5_path: Path) -> str | None:
    """The recording's `session_uuid` root attribute (its file is `<session_uuid>.h5` when recorded), None when the
    file cannot be read or has none."""
    value = _root_attr(h5_path, "session_uuid")
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value) if value and value is not _UNREADABLE else None


_UNREADABLE = object()


def _root_attr(h5_path: Path, name: str) -> object:
    """A root attribute of the file (None if it has none), or _UNREADABLE: whatever h5py raises on a damaged, foreign
    or vanished file (a fresh tester of issue 12: "internal error" from `verify` on a damaged superblock), and a
    damaged heap of texts, never read (heaps.py). Opened as a SWMR reader only when refused for its "open for
    writing" mark (damaged.refused_for_its_mark: a damaged file made `verify` retry for minutes)."""
    from workstation.recording.damaged import HDF5_ERRORS, refused_for_its_mark
    from workstation.recording.heaps import damaged_heap

    try:
        try:
            h5 = h5py.File(h5_path, "r", locking=False)
        except HDF5_ERRORS as exc:
            if not refused_for_its_mark(exc):
                return _UNREADABLE
            h5 = h5py.File(h5_path, "r", locking=False, swmr=True)
        with h5:
            if not h5.swmr_mode and damaged_heap(h5_path, h5) is not None:
                return _UNREADABLE
            return h5.attrs.get(name)
    except HDF5_ERRORS as exc:
        log.info("the root attribute %s of %s cannot be read: %s", name, h5_path, exc)
        return _UNREADABLE


def names_this_recording(h5_path: Path, name: str) -> bool | None:
    """Whether a sidecar naming the file `name` (a .sig's `file`, the name in a .sha256) was made for this recording:
    True for this file's own name or `<its session_uuid>.h5` (renamed since), False for another session's name, None
    when the names differ and the file's session cannot be read (cannot be told)."""
    if not name or name == h5_path.name:
        return True
    session = session_uuid_of(h5_path)
    if session is None:
        return None
    return name.removesuffix(".h5") == session


def stopped_while_writing(target: Path) -> bool:
    """Whether a temporary file of `target` left by `atomic_write_text` lies beside it: the program that was writing
    it stopped in the middle (killed, a power cut), after the recording itself was closed."""
    try:
        return any(p.name.startswith(f".{target.name}.") and p.name.endswith(".tmp")
                   for p in target.parent.iterdir())
    except OSError:
        return False


@dataclass(frozen=True)
class SignatureCheck:
    """`status`: 'intact' (signed by a trusted key, the file unchanged), 'modified' (the file or its signature
    changed after signing), 'other' (a valid signature of another file beside it: it says nothing about this one),
    'untrusted' (a valid signature by a key this workstation does not know), 'missing' (a recording made to be signed
    without a readable .sig), 'unsigned' (no .sig, recorded before signatures) or 'unreadable' (a .sig that is not a
    signature, beside a recording from before signatures). `text` says it."""

    status: str
    text: str

    @property
    def ok(self) -> bool:
        return self.status == "intact"


def check(h5_path: Path, sha256_now: str) -> SignatureCheck:
    """Check the .sig beside `h5_path` against the file's SHA-256 computed now (`sha256_now`); whether the file must
    carry one is read from it (`signature_expected`)."""
    sig = signature_path(h5_path)
    expected = signature_expected(h5_path)
    missing = "SIGNATURE MISSING: the file cannot be proven unchanged"
    if not sig.is_file():
        if expected:
            return SignatureCheck("missing", f"{missing} (no {sig.name}, though this recording was made to be "
                                             f"signed: {_why_no_signature(h5_path)})")
        why = "recorded before signatures" if expected is False else f"{h5_path.name} is not an HDF5 recording"
        return SignatureCheck("unsigned", f"not signed ({why}; no {sig.name}): its origin cannot be proven")
    try:
        body = json.loads(sig.read_text(encoding="utf-8"))
        fields = {k: str(body[k]) for k in ("file", "sha256", "signed_at_utc", "workstation", "public_key_ed25519",
                                             "signature_ed25519")}
        if body.get("format") != FORMAT:
            raise ValueError("format")
    except (OSError, ValueError, KeyError, TypeError):
        if expected:
            return SignatureCheck("missing", f"{missing} ({sig.name} is not a Cicatrix signature)")
        return SignatureCheck("unreadable", f"{sig.name} is not a Cicatrix signature: its origin cannot be proven")
    signed = verify_signature(fields["public_key_ed25519"], fields["signature_ed25519"],
                              message(fields["file"], fields["sha256"], fields["signed_at_utc"],
                                      fields["workstation"]))
    who = f"workstation {fields['workstation']} at {fields['signed_at_utc']}"
    if not signed:
        return SignatureCheck("modified", f"the signature file was changed after signing (claims {who})")
    if fields["sha256"] != sha256_now.lower():
        mine = names_this_recording(h5_path, fields["file"])
        if mine:
            renamed = "" if fields["file"] == h5_path.name else f" (as {fields['file']})"
            return SignatureCheck("modified", f"MODIFIED AFTER SIGNING: signed by {who}{renamed}, but the file is "
                                              "not the one signed")
        own = ("this recording's own signature is missing, so the file cannot be proven unchanged" if expected
               else "this recording has no signature of its own")
        if mine is False:
            session = session_uuid_of(h5_path)
            return SignatureCheck("other", f"{sig.name} is the signature of another file ({fields['file']}, signed "
                                           f"by {who}), not of this recording (session {session}): it does not say "
                                           f"whether this file changed; {own}")
        return SignatureCheck("other", f"{sig.name} does not match this file: it signs {fields['file']} (signed by "
                                       f"{who}), and this file's session cannot be read to tell whether that was "
                                       "this recording: either it is another file's signature, or this file was "
                                       f"renamed and changed after it was signed; {own}")
    # The SHA-256 covers every byte, the session's id and metadata included; the name is only where it lies now.
    moved = "" if fields["file"] == h5_path.name else f" (copied/renamed from {fields['file']})"
    trusted, problems = read_trusted()
    warn = "".join(f"; warning: {p}" for p in problems)
    key = fields["public_key_ed25519"].lower()
    if key not in trusted:
        if fields["workstation"] == workstation_name():
            return SignatureCheck("untrusted", f"signed at {fields['signed_at_utc']}, claims to be this workstation "
                                               f"({fields['workstation']}) but is not signed with this workstation's "
                                               f"key (signed with {key[:16]}…): forged, or this workstation's key was "
                                               f"replaced (restore it from the backup){warn}")
        return SignatureCheck("untrusted", f"signed by {who} with a key this workstation does not know "
                                           f"({key[:16]}…): add it to {TRUSTED_FILE} if that workstation is the "
                                           f"clinic's{warn}")
    return SignatureCheck("intact", f"signed by {who}, intact{moved}{warn}")


def _why_no_signature(h5_path: Path) -> str:
    """Why a recording made to be signed has no .sig, as far as the files beside it tell (the recorder writes the
    .sha256, then the .sig): stopped while signing, stopped after its checksum, or either that or a copy without it."""
    sig = signature_path(h5_path)
    if stopped_while_writing(sig):
        return (f"the program stopped while writing it: a temporary file of {sig.name} is left beside the "
                "recording")
    if closed_on_full_disk(h5_path):
        return (f"its session closed it on a full disk (the file says so), so most likely there was no room left for "
                f"{sig.name}, unless it was deleted or not copied with the file")
    saved = checksum_path(h5_path)
    held = _holds_sha256(saved) if saved.is_file() else None
    if saved.is_file() and held is None:  # a third fresh tester: an unreadable one was called "cut short"
        return (f"its {saved.name} is there but cannot be read, so whether the program stopped after writing the "
                f"checksum, or {sig.name} was deleted or not copied, cannot be told")
    if saved.is_file() and not held:
        return (f"its {saved.name} is there but holds no SHA-256: cut short while being written (a crash or a full "
                "disk, in a version of the program from before checksums were written whole or not at all), or "
                f"written or changed by another program, and {sig.name} is written only after it")
    if saved.is_file():
        return (f"its {saved.name} is there, so either the program stopped after writing the "
                f"checksum and before signing (a crash, a kill or a power cut), or the disk had no room left for "
                f"{sig.name}, or it was deleted or not copied with it")
    return f"{sig.name} was never written, or was not copied with the file"


def _holds_sha256(saved: Path) -> bool | None:
    """Whether a .sha256 holds a SHA-256; None when it cannot be read."""
    try:
        return sha256_saved_in(saved.read_text(encoding="ascii", errors="replace")) is not None
    except OSError:
        return None


def no_sidecars_words(path: Path, saved: Path) -> str:
    """Neither .sha256 (`saved`) nor .sig beside the recording at `path`: why, in words, as far as the disk tells (the recorder closes the file, then
    writes its .sha256, then its .sig; crash recovery at the next start with the store writes them)."""
    ended = _closed_at(path)
    if ended is False:  # a fresh tester of issue 12 (19th session): a damaged or cut copy was "not closed" too
        return (f"no {saved.name}, and the file cannot be read as HDF5 (damaged, cut short, or not a recording: "
                "`inspect` says which), so whether the recorder closed it cannot be told")
    if ended is None:
        return f"no {saved.name} (the file was not closed by the recorder)"
    sig = signature_path(path)
    if closed_on_full_disk(path):
        why = ("its session closed it on a full disk (the file says so), so most likely there was no room left for "
               "them, unless they were deleted or not copied with the file")
    elif stopped_while_writing(saved) or stopped_while_writing(sig):
        why = ("the program stopped while writing them (a temporary file of one is left beside the recording): it "
               "was never signed")
    elif _in_recordings_folder(path):
        why = ("it lies in this workstation's recordings folder, so the program most likely stopped after closing "
               "it and before writing them (a crash, a kill or a power cut), unless they were deleted")
    else:
        why = ("either the program stopped after closing it and before writing them (a crash, a kill or a power "
               "cut), or the file was copied or moved here without them")
    what = "SIGNATURE MISSING: the file cannot be proven unchanged" if signature_expected(path) is not False else \
        "not signed (recorded before signatures): the file cannot be checked"
    return f"{what} (no {saved.name} and no {sig.name} beside it, though the recorder closed the file at {ended}: {why})"


def _in_recordings_folder(path: Path) -> bool:
    """Whether `path` lies under one of this workstation's recordings folders (default or as its settings say)."""
    from workstation import places

    roots = [places.recordings_dir(), places.training_recordings_dir()]
    try:
        from workstation.settings import load_settings

        roots.append(Path(load_settings()["paths.recordings"]))
    except Exception:  # noqa: BLE001 - a settings file with errors: the default folders only
        pass
    here = path.expanduser().absolute()
    return any(here.is_relative_to(root.expanduser().absolute()) for root in roots)


def _closed_at(path: Path) -> str | None | bool:
    """The recording's `end_time_utc` (written at close); None when it has none; False when its root cannot be read
    (damaged, cut short, not HDF5; or live and held: never asked of a file in use, see cli_store._verify)."""
    try:
        with h5py.File(path, "r", locking=False) as f:
            end = f.attrs.get("end_time_utc")
    except Exception:  # noqa: BLE001 - a damaged, cut or foreign file: not known to be closed, nor not to be
        return False
    if isinstance(end, bytes):
        end = end.decode("utf-8", "replace")
    return str(end) if end is not None else None
