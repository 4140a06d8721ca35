"""The workstation's keys, kept outside the store: the identity key (AES-256-GCM, encrypts the identity columns) and
the recording signing key (Ed25519, signs each recording's SHA-256). Both are created on first use in a folder only
the clinic's account can read (0700, files 0600). docs/records.md explains the backup: without the identity key a
copied store shows no name, and neither does the clinic's own store restored from a backup.

The folder is `keys/` in the user's configuration folder (workstation.places; XDG_CONFIG_HOME moves it).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import socket
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from workstation.errors import UserError
from workstation.places import config_dir

IDENTITY_KEY_FILE = "identity.key"
TRAIL_KEY_FILE = "trail.key"
SIGNING_KEY_FILE = "recording-signing.pem"
TOKEN_PREFIX = "aesgcm1:"


def keys_dir() -> Path:
    return config_dir() / "keys"


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) if needed and make it 0700: readable by this account only."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write a new file readable by this account only (0600), failing if it exists; fsynced before it is used."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_or_create(name: str, make: callable) -> bytes:  # type: ignore[valid-type]
    path = keys_dir() / name
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            raise UserError(f"The workstation key {path} is readable by other accounts (mode {mode & 0o777:o}): it "
                            f"is not used. Treat it as disclosed: restore the clinic's key from its backup (or, with "
                            f"the administrator, make it private with `chmod 600 {path}`), then try again.")
        return path.read_bytes()
    except FileNotFoundError:
        try:
            write_private(path, make())
        except FileExistsError:
            pass  # another process created it first: use theirs
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"The workstation key {path} cannot be read ({exc.strerror}); check its owner and "
                        f"permissions (it must be readable by the clinic's account only).") from exc


class IdentityCipher:
    """AES-256-GCM over one identity field at a time. The row and column are authenticated data, so a value moved to
    another patient or field does not decrypt. Tokens are 'aesgcm1:' + base64(nonce ‖ ciphertext ‖ tag)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise UserError(f"The identity key in {keys_dir()} is not a 256-bit key; restore it from the backup.")
        self._aead = AESGCM(key)
        self.key_id = key_id(key, "identity")

    @classmethod
    def load(cls) -> IdentityCipher:
        """The workstation's identity key, created on first use."""
        return cls(_read_or_create(IDENTITY_KEY_FILE, lambda: secrets.token_bytes(32)))

    def encrypt(self, value: str, *, patient_id: int, field: str) -> str:
        nonce = secrets.token_bytes(12)
        ct = self._aead.encrypt(nonce, value.encode("utf-8"), f"{patient_id}:{field}".encode())
        return TOKEN_PREFIX + base64.b64encode(nonce + ct).decode("ascii")

    def decrypt(self, token: str, *, patient_id: int, field: str) -> str:
        if not token.startswith(TOKEN_PREFIX):
            raise UserError(f"Patient {patient_id}'s identity is not encrypted in the store; open the store once "
                            "with this version so it is encrypted.")
        raw = base64.b64decode(token[len(TOKEN_PREFIX):])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], f"{patient_id}:{field}".encode()).decode("utf-8")
        except InvalidTag as exc:
            raise UserError("The identity on file cannot be read with this workstation's identity key (the key is "
                            "another clinic's, or the value was changed around the program). Restore the clinic's "
                            "key from its backup.") from exc


def trail_key() -> bytes:
    """The clinic's audit-trail key (32 random bytes, created on first use): the trail's chain is an HMAC under it, so
    whoever has the store but not the key cannot rewrite the trail so that it verifies (docs/records.md)."""
    key = _read_or_create(TRAIL_KEY_FILE, lambda: secrets.token_bytes(32))
    if len(key) != 32:
        raise UserError(f"The trail key in {keys_dir()} is not a 256-bit key; restore it from the backup.")
    return key


def key_id(key: bytes, purpose: str) -> str:
    """A short public fingerprint of a secret key (to tell which key a store was written with), not the key."""
    return hashlib.sha256(f"cicatrix {purpose} key".encode() + key).hexdigest()[:16]


def workstation_name() -> str:
    return socket.gethostname() or "workstation"


def signing_key() -> Ed25519PrivateKey:
    """The workstation's Ed25519 key for signing recordings, created on first use."""
    pem = _read_or_create(SIGNING_KEY_FILE, lambda: Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"{keys_dir() / SIGNING_KEY_FILE} is not an Ed25519 key; restore it from the backup.")
    return key


def public_key_text(key: Ed25519PrivateKey) -> str:
    """The raw public key as hex (64 characters): what a signature file carries and a verifier checks against."""
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def verify_signature(public_hex: str, signature_hex: str, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True
