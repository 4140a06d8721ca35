"""Opening a store file: the role check (clinic or training), WAL, foreign keys, and the schema upgrade
(workstation.store.upgrade: Alembic, after the legacy migrations for an old store)."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from workstation.errors import UserError
from workstation.keys import IdentityCipher, private_dir, trail_key
from workstation.store.identity import encrypt_plain_rows, has_plain_identity
from workstation.store.migrations import schema_version
from workstation.store.paths import clinic_db_path, data_dir, default_db_path, training_db_path
from workstation.store.trail import default_actor, differs_from_trail, install_triggers, register_functions
from workstation.store.upgrade import LATEST_VERSION, sqlite_connection, upgrade

ROLES = ("clinic", "training")
BUSY_TIMEOUT_MS = 5000
"""How long a write waits for another program's write lock on the store before it gives up with a sentence."""


def is_busy(exc: sqlite3.Error) -> bool:
    """True when SQLite gave up waiting for another connection's lock (SQLITE_BUSY / SQLITE_LOCKED)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def busy_error(path: Path) -> UserError:
    """The sentence for a store another program holds: what happened and what to do, never SQLite's text."""
    return UserError(f"The clinic store {path} is in use by another program, which has held it for more than "
                     f"{BUSY_TIMEOUT_MS / 1000:g} s; nothing was changed. Try again in a moment; if this repeats, "
                     f"close the other program that has the store open.")


def connect(path: Path, role: str) -> sqlite3.Connection:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    training = role == "training"
    other = clinic_db_path() if training else training_db_path()
    if path.resolve() == other.resolve():
        raise UserError(f"{path} is the {'clinic' if training else 'training'} database; a {role} store cannot "
                        f"open it. Use {default_db_path(training=training)} instead.")
    _private_file(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA secure_delete = ON")  # a deleted or replaced value does not linger in free pages
        register_functions(conn, default_actor, str, trail_key())
        found = _role_of(conn, path)
        if found is not None and found != role:
            raise UserError(f"{path} is marked as a {found} database; a {role} store cannot open it. "
                            f"{'Simulation uses the training database.' if training else 'Open it in simulation.'}")
        version = schema_version(conn)
        if version > LATEST_VERSION:
            raise UserError(f"{path} has schema version {version}, newer than this program knows "
                            f"({LATEST_VERSION}); update the workstation software.")
        if _switch_to_wal(conn) != "wal":
            raise UserError(f"{path} could not be switched to WAL mode; put it on a local disk.")
        engine_conn = sqlite_connection(conn)
        try:
            upgrade(engine_conn, role=role if found is None else None, where=str(path))
        finally:
            engine_conn.close()
        if has_plain_identity(conn):
            encrypt_plain_rows(conn, IdentityCipher.load())
        install_triggers(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if is_busy(exc):
            raise busy_error(path) from exc
        raise UserError(f"{path} is not a Cicatrix database or is damaged ({exc}); check the path.") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _private_file(path: Path) -> None:
    """The store holds clinical data: its folder is created 0700 and the file 0600 (SQLite gives its -wal and -shm
    files the database's mode). A store found readable by others is tightened to 0600; the cicatrix data folder
    itself is always 0700. A folder the store did not create (e.g. /tmp) is left as it is."""
    if not path.parent.exists():
        private_dir(path.parent)
    elif path.parent.resolve() == data_dir().resolve():
        private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    except PermissionError as exc:
        raise UserError(f"The store {path} cannot be opened by this account ({exc.strerror}); check its owner.") from exc


def _switch_to_wal(conn: sqlite3.Connection) -> str:
    """Set WAL journaling and return the mode now in force. Leaving rollback journaling needs an exclusive lock, and
    SQLite answers BUSY at once (without its busy handler) while another process has the new file open: retry for up
    to the busy timeout, as a write would wait."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def _role_of(conn: sqlite3.Connection, path: Path) -> str | None:
    # Version and table count in one statement (one snapshot): another process may create the schema in between.
    version, tables = conn.execute(
        "SELECT (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM sqlite_master)").fetchone()
    if version == 0:
        if tables:
            raise UserError(f"{path} is an SQLite file of another program; choose another path.")
        return None
    row = conn.execute("SELECT rowid, value FROM meta WHERE key = 'role'").fetchone()
    if row is None:
        raise UserError(f"{path} has no role marker (clinic or training); it cannot be used safely.")
    if differs_from_trail(conn, "meta", int(row[0]), {"key": "role", "value": row[1]}, ("key", "value")) not in (
            "", "it is not in the audit trail"):  # a store from before its trail has no record of the marker yet
        raise UserError(f"{path}: its clinic/training marker was changed around the program (it differs from the "
                        "audit trail), so it cannot be opened. Tell the clinic's administrator.")
    return str(row[1])
