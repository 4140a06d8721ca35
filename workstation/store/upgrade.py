"""Bringing a clinic store to the schema this program knows: Alembic (workstation/store/alembic/), run from the
program with the store's own connection; no alembic.ini and no `alembic` command at run time.

- A new store is created by the Alembic revisions, its clinic/training marker written in the same transaction.
- An SQLite store made by the legacy migrations (PRAGMA user_version 1..8, workstation/store/migrations.py) is
  first brought to version 8 by them, then stamped at revision 0001 (the same schema) and upgraded to the head.
- On SQLite the whole upgrade runs under the write lock (BEGIN IMMEDIATE) and the state is read again after the
  lock is taken, so several processes opening one new store at once make one schema; PostgreSQL serialises them
  with a transaction-scoped advisory lock. `user_version` keeps counting on SQLite (revision 0001 = 8, each later
  revision one more), so a program from before Alembic refuses a store that has moved past it."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from workstation.errors import UserError
from workstation.store.db import Db
from workstation.store.migrations import MIGRATIONS, migrate

SCRIPTS = Path(__file__).resolve().parent / "alembic"
BASE_REVISION = "0001"
"""The Alembic revision whose schema is the last legacy migration's."""
LEGACY_VERSION = 8
"""The last legacy migration (PRAGMA user_version): the schema of BASE_REVISION."""
UPGRADE_LOCK = 0x43494341  # "CICA": the advisory lock key on PostgreSQL


def config(conn: Connection | None = None) -> Config:
    """An Alembic configuration made in code (no ini file); `conn` is the connection env.py migrates."""
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


@cache
def revisions() -> tuple[str, ...]:
    """The revisions from BASE_REVISION to the head, in order (one line of history: never a branch)."""
    script = ScriptDirectory.from_config(config())
    heads = script.get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the store's Alembic history has {len(heads)} heads ({heads}); give the revisions one "
                           "line (each revision's down_revision is the one before)")
    found = [r.revision for r in script.walk_revisions("base", heads[0])]
    return tuple(reversed(found))


def version_of(revision: str) -> int:
    """The schema version number of a revision: BASE_REVISION is LEGACY_VERSION, each later one one more."""
    return LEGACY_VERSION + revisions().index(revision)


def latest_version() -> int:
    return version_of(revisions()[-1])


LATEST_VERSION = latest_version()
"""The schema version of the head revision (SQLite's user_version after an upgrade)."""


def current_revision(conn: Connection) -> str | None:
    """The Alembic revision a store is at (None: a new store, or a legacy one)."""
    return MigrationContext.configure(conn).get_current_revision()


def schema_version(db: Db) -> int:
    """The schema version of an open store (its Alembic revision's number)."""
    return version_of(db.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def _user_version(conn: Connection) -> int:
    return int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())


def _has_tables(conn: Connection) -> bool:
    if conn.dialect.name == "sqlite":
        return bool(conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar_one())
    return bool(conn.execute(text("SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                                  "current_schema()")).scalar_one())


def upgrade(conn: Connection, *, role: str | None, where: str) -> int:
    """Bring the store on `conn` (not in a transaction) to the Alembic head; return its schema version. `role` is
    written as the clinic/training marker when the store is new (None: leave the marker as it is). `where` names
    the store in sentences. Raises UserError for a store newer than this program or one of another program."""
    if len(MIGRATIONS) != LEGACY_VERSION:
        raise RuntimeError("the legacy migrations are frozen at version 8: a schema change is an Alembic revision "
                           "(workstation/store/alembic/README.md)")
    sqlite = conn.dialect.name == "sqlite"
    head = revisions()[-1]
    if sqlite and current_revision(conn) is None and 0 < _user_version(conn) < LEGACY_VERSION:
        conn.commit()  # nothing open: the legacy migrations take the write lock step by step themselves
        migrate(conn.connection.driver_connection, upto=LEGACY_VERSION)
    if current_revision(conn) == head and (not sqlite or _user_version(conn) == latest_version()):
        conn.commit()
        return latest_version()
    conn.commit()  # end the read snapshot so that begin() takes the lock
    conn.info["write_lock"] = True
    try:
        return _upgrade_locked(conn, role, where, sqlite, head)
    finally:
        conn.info.pop("write_lock", None)


def _upgrade_locked(conn: Connection, role: str | None, where: str, sqlite: bool, head: str) -> int:
    with conn.begin():
        if not sqlite:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK})
        revision = current_revision(conn)
        new = False
        if revision is None:
            version = _user_version(conn) if sqlite else 0
            if version == LEGACY_VERSION:
                command.stamp(config(conn), BASE_REVISION)
            elif version != 0 or _has_tables(conn):
                raise UserError(f"{where} holds tables of another program (or a damaged store): it is not a "
                                "Cicatrix store; choose another.")
            else:
                new = True
        elif revision not in revisions():
            raise UserError(f"{where} has a schema newer than this program knows (revision {revision}); update "
                            "the workstation software.")
        if revision != head:
            command.upgrade(config(conn), "head")
        if new and role is not None:
            conn.execute(text("INSERT INTO meta (key, value) VALUES ('role', :role)"), {"role": role})
        if sqlite:
            conn.exec_driver_sql(f"PRAGMA user_version = {latest_version()}")
    return latest_version()
