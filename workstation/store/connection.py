"""Opening a store file: the role check (clinic or training), WAL, foreign keys, and the migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from workstation.errors import UserError
from workstation.store.migrations import LATEST_VERSION, migrate, schema_version
from workstation.store.paths import clinic_db_path, default_db_path, training_db_path

ROLES = ("clinic", "training")


def connect(path: Path, role: str) -> sqlite3.Connection:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    training = role == "training"
    other = clinic_db_path() if training else training_db_path()
    if path.resolve() == other.resolve():
        raise UserError(f"{path} is the {'clinic' if training else 'training'} database; a {role} store cannot "
                        f"open it. Use {default_db_path(training=training)} instead.")
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 5000")
        found = _role_of(conn, path)
        if found is not None and found != role:
            raise UserError(f"{path} is marked as a {found} database; a {role} store cannot open it. "
                            f"{'Simulation uses the training database.' if training else 'Open it in simulation.'}")
        version = schema_version(conn)
        if version > LATEST_VERSION:
            raise UserError(f"{path} has schema version {version}, newer than this program knows "
                            f"({LATEST_VERSION}); update the workstation software.")
        if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise UserError(f"{path} could not be switched to WAL mode; put it on a local disk.")
        migrate(conn, role=role if found is None else None)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise UserError(f"{path} is not a Cicatrix database or is damaged ({exc}); check the path.") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _role_of(conn: sqlite3.Connection, path: Path) -> str | None:
    if schema_version(conn) == 0:
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise UserError(f"{path} is an SQLite file of another program; choose another path.")
        return None
    row = conn.execute("SELECT value FROM meta WHERE key = 'role'").fetchone()
    if row is None:
        raise UserError(f"{path} has no role marker (clinic or training); it cannot be used safely.")
    return str(row[0])
