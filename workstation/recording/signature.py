"""Signed recordings: at close the recorder signs the file's SHA-256 with the workstation's Ed25519 key
(workstation.keys), so whoever edits a recording and rewrites its .sha256 is still found out.

Beside `<uuid>.h5` and `<uuid>.h5.sha256` the recorder writes `<uuid>.h5.sig`, a JSON object:

| key | value |
|---|---|
| `format` | `"cicatrix-recording-signature-1"` |
| `file` | the recording's file name |
| `sha256` | its SHA-256 (hex) at close |
| `signed_at_utc` | ISO 8601, UTC |
| `workstation` | the host name of the signing workstation |
| `public_key_ed25519` | the signer's raw public key (hex, 64 characters) |
| `signature_ed25519` | Ed25519 signature (hex) of `message()` below |

A signature is trusted when its public key is this workstation's own, or is listed (one `<hex key> <name>` a line)
in `trusted-workstations` in the keys folder: `main.py keys public` prints the line to add on the other
workstations of the clinic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from workstation.checksum import atomic_write_text
from workstation.keys import keys_dir, public_key_text, signing_key, verify_signature, workstation_name

FORMAT = "cicatrix-recording-signature-1"
TRUSTED_FILE = "trusted-workstations"


def signature_path(h5_path: Path) -> Path:
    return h5_path.with_name(h5_path.name + ".sig")


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


def trusted_keys() -> dict[str, str]:
    """Public key (hex) -> workstation name: this workstation's own and those listed in `trusted-workstations`."""
    keys = {public_key_text(signing_key()): f"{workstation_name()} (this workstation)"}
    listed = keys_dir() / TRUSTED_FILE
    if listed.is_file():
        for line in listed.read_text(encoding="utf-8", errors="replace").splitlines():
            words = line.split(maxsplit=1)
            if words and len(words[0]) == 64 and not line.startswith("#"):
                keys[words[0].lower()] = words[1].strip() if len(words) > 1 else "a trusted workstation"
    return keys


@dataclass(frozen=True)
class SignatureCheck:
    """`status`: 'intact' (signed by a trusted key, the file unchanged), 'modified' (the file or its signature
    changed after signing), 'untrusted' (a valid signature by a key this workstation does not know), 'unsigned' (no
    .sig) or 'unreadable' (a .sig that is not a signature). `text` says it in words."""

    status: str
    text: str

    @property
    def ok(self) -> bool:
        return self.status == "intact"


def check(h5_path: Path, sha256_now: str) -> SignatureCheck:
    """Check the .sig beside `h5_path` against the file's SHA-256 computed now (`sha256_now`)."""
    sig = signature_path(h5_path)
    if not sig.is_file():
        return SignatureCheck("unsigned", f"not signed (no {sig.name}): its origin cannot be proven")
    try:
        body = json.loads(sig.read_text(encoding="utf-8"))
        fields = {k: str(body[k]) for k in ("file", "sha256", "signed_at_utc", "workstation", "public_key_ed25519",
                                             "signature_ed25519")}
        if body.get("format") != FORMAT:
            raise ValueError("format")
    except (OSError, ValueError, KeyError, TypeError):
        return SignatureCheck("unreadable", f"{sig.name} is not a Cicatrix signature: its origin cannot be proven")
    signed = verify_signature(fields["public_key_ed25519"], fields["signature_ed25519"],
                              message(fields["file"], fields["sha256"], fields["signed_at_utc"],
                                      fields["workstation"]))
    who = f"workstation {fields['workstation']} at {fields['signed_at_utc']}"
    if not signed:
        return SignatureCheck("modified", f"the signature file was changed after signing (claims {who})")
    if fields["sha256"] != sha256_now.lower() or fields["file"] != h5_path.name:
        return SignatureCheck("modified", f"MODIFIED AFTER SIGNING: signed by {who}, but the file is not the one "
                                          "signed")
    trusted = trusted_keys()
    key = fields["public_key_ed25519"].lower()
    if key not in trusted:
        return SignatureCheck("untrusted", f"signed by {who} with a key this workstation does not know "
                                           f"({key[:16]}…): add it to {TRUSTED_FILE} if that workstation is the "
                                           "clinic's")
    return SignatureCheck("intact", f"signed by {who}, intact")
