"""Moving a clinic: a single-room SQLite store copied into an empty PostgreSQL database (`main.py store migrate --to`).

1. The SQLite store is opened (brought to this program's schema, as any open does) and its audit trail verified
   under the clinic's key: a trail that does not verify is not moved (its problem is named).
2. The target must be empty (no table in its schema). The schema is made there by the same Alembic revisions, without
   a clinic/training marker (the copied `meta` brings it), and the trail's triggers installed.
3. In ONE transaction, with `session_replication_role = replica` (the triggers and foreign-key checks do not fire, so
   the copy writes no trail rows of its own and the trail rows are copied as they are, with their hashes), every
   table is copied row by row with its ids; each id sequence is then set past the largest id copied.
4. The copy is opened as a store and its trail verified again (chain, triggers, and the replay of the trail against
   the copied tables); every table's row count and values are compared with the SQLite store's.

All or nothing: the account's rights (CREATE on the schema, CREATE on the database when pgcrypto is not there yet,
SET on session_replication_role: the server's superuser has them all, or GRANT SET ON PARAMETER
session_replication_role) are checked before anything is made, and a missing one is named in the sentence; a move
that fails after step 2 began (the server refuses, the copy does not verify or compare) drops every table, function
and extension it made (`_undo`), so the database is empty again for the next try."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from workstation.errors import UserError
from workstation.keys import trail_key
from workstation.store import pg_trail, trail
from workstation.store.connection import display, server_problem, store_url
from workstation.store.db import Db
from workstation.store.upgrade import upgrade
from workstation.words import counted

NOT_COPIED = ("alembic_version",)  # made by the schema upgrade on the target


def _role(source: Path) -> str:
    try:
        conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'role'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise UserError(f"{source} is not a Cicatrix store or is damaged; nothing was copied.") from exc
    if row is None or row[0] not in ("clinic", "training"):
        raise UserError(f"{source} has no clinic/training marker; it cannot be moved safely.")
    return str(row[0])


def _rows(db: Db, table: str, cols: list[str]) -> list[tuple]:
    return [tuple(r) for r in db.execute(f"SELECT {', '.join(cols)} FROM {table}")]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):  # a REAL column may hold an integer on SQLite
        return a is not None and b is not None and float(a) == float(b)
    return a == b


def _target(url: str) -> tuple[Db, Any]:
    parsed = store_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise UserError("store migrate --to takes a PostgreSQL store's URL (postgresql+psycopg://…).")
    where = display(parsed)
    engine = create_engine(parsed.set(drivername="postgresql+psycopg"), poolclass=NullPool,
                           connect_args={"connect_timeout": 10})
    try:
        db = Db(engine.connect())
    except DBAPIError as exc:
        engine.dispose()
        raise UserError(server_problem(exc, where)) from exc
    pg_trail.configure(db.raw, trail_key(), trail.default_actor())
    return db, engine


def migrate_to_server(source: Path, url: str) -> list[str]:
    """Copy the SQLite store `source` into the empty PostgreSQL database at `url`; return the lines of its report.
    Raises UserError (nothing copied, or the target named as incomplete) for a trail that does not verify, a target
    that is not empty, an account that may not, or a copy that does not compare equal."""
    from workstation.store import ClinicStore

    role = _role(source)
    if role == "training":
        raise UserError(f"{source} is a training store (kept by simulated sessions); only a clinic store moves to the "
                        "clinic's server. Nothing was copied.")
    where = display(store_url(url))
    lines = []
    with ClinicStore.open(source, training=role == "training", read_only=True) as src:
        if src.trail_key_problem:
            raise UserError(src.trail_key_problem)
        before = trail.verify(src._conn, trail_key())
        if not before.intact:
            raise UserError(f"The audit trail of {source} does not verify ({before.problem}), so the store is not "
                            "moved: the clinic's administrator must look into it first. Nothing was copied.")
        lines.append(f"audit trail of {source} verified: {counted(before.rows, 'row')}")
        db, engine = _target(url)
        try:
            if db.tables():
                raise UserError(f"{where} is not empty (it has tables): store migrate copies into an EMPTY "
                                "database only, so nothing was copied. Create a new database for the clinic.")
            had = _extensions(db)
            _check_rights(db, where)
        finally:
            db.close()
            engine.dispose()
        try:
            counts = _make_and_copy(src._conn, url, where)
            with ClinicStore.open(url, training=role == "training") as dst:
                after = trail.verify(dst._conn, trail_key())
                if not after.intact or after.rows != before.rows:
                    raise UserError(f"The copy in {where} does not verify ({after.problem or 'rows differ'}), so it "
                                    "was not kept: keep working on the SQLite store, and tell the clinic's "
                                    "administrator.")
                lines.append(f"audit trail of {where} verified after the copy: {counted(after.rows, 'row')}")
                problem = compare(src._conn, dst._conn)
                if problem:
                    raise UserError(f"The copy in {where} differs from {source} ({problem}), so it was not kept: "
                                    "keep working on the SQLite store, and tell the clinic's administrator.")
        except BaseException as exc:
            left = _undo(url, had)
            if left and isinstance(exc, UserError):
                raise UserError(f"{exc} {left}") from exc
            raise
    lines += [f"{table}: {counted(n, 'row')} copied, ids kept, values compared" for table, n in counts.items()]
    lines.append(f"{source} moved to {where}. Point the workstations at it (store.url) and run `store setup-roles` "
                 "there; the SQLite store is left as it was (keep it as a backup).")
    return lines


def _extensions(db: Db) -> set[str]:
    return {r[0] for r in db.execute("SELECT extname FROM pg_extension")}


def _check_rights(db: Db, where: str) -> None:
    """Refuse, before anything is made, an account that lacks a right the move needs, naming it."""
    account = db.execute("SELECT current_user").fetchone()[0]
    if not db.execute("SELECT has_schema_privilege(current_schema(), 'CREATE')").fetchone()[0]:
        raise UserError(missing_right(account, where, "schema"))
    if "pgcrypto" not in _extensions(db) and \
            not db.execute("SELECT has_database_privilege(current_database(), 'CREATE')").fetchone()[0]:
        raise UserError(missing_right(account, where, "extension"))
    db.begin()
    try:
        db.execute("SET LOCAL session_replication_role = replica")
    except DBAPIError as exc:
        raise UserError(missing_right(account, where, "replica")) from exc
    finally:
        db.rollback()


RIGHTS = {
    "schema": "CREATE on the database's schema (to make the store's tables; the database's owner has it)",
    "extension": "CREATE on the database (to add the pgcrypto extension the audit trail's chain uses; the "
                 "database's owner has it)",
    "replica": "SET on the parameter session_replication_role (to copy the rows and the audit trail as they are, "
               "with the triggers held: the server's superuser has it, or GRANT SET ON PARAMETER "
               "session_replication_role TO the account)",
}


def missing_right(account: str, where: str, right: str) -> str:
    """The sentence for an account that lacks one of RIGHTS: nothing was copied or made."""
    return (f"The account {account} may not move the store into {where}: it lacks {RIGHTS[right]}. Nothing was "
            "copied and nothing was made there. Run store migrate as the server's superuser (or give the account "
            "that right), then try again.")


def _right_of(exc: BaseException) -> str | None:
    text = str(getattr(exc, "orig", exc)).lower()
    if "session_replication_role" in text:
        return "replica"
    if "permission denied for schema" in text:
        return "schema"
    if "extension" in text and ("permission denied" in text or "must be" in text):
        return "extension"
    return None


def _make_and_copy(src: Db, url: str, where: str) -> dict[str, int]:
    """The schema, the trail's triggers and the copy, on a connection of their own. Raises UserError."""
    db, engine = _target(url)
    try:
        upgrade(db.conn, role=None, where=where)
        trail.install_triggers(db)
        return _copy(src, db)
    except DBAPIError as exc:
        if db.in_transaction:
            db.rollback()
        right = _right_of(exc)
        account = db.execute("SELECT current_user").fetchone()[0] if right else ""
        raise UserError(missing_right(account, where, right) if right else
                        f"The copy into {where} failed ({server_problem(exc, where)}); nothing was copied.") from exc
    finally:
        db.close()
        engine.dispose()


def _undo(url: str, had: set[str]) -> str:
    """After a move that failed part-way: drop what it made in the (empty before) database, so a retry finds it
    empty. '' when done, else the sentence saying what to do."""
    from workstation.store.roles import _owned_functions

    try:
        db, engine = _target(url)
    except UserError as exc:
        return f"What was made there could not be removed ({exc}); drop and create the database again before the " \
               "next try."
    try:
        db.begin()
        tables = db.tables()
        if tables:
            db.execute(f"DROP TABLE {', '.join(tables)} CASCADE")
        for function in _owned_functions(db):
            db.execute(f"DROP FUNCTION {function}")
        for extension in _extensions(db) - had:
            db.execute(f"DROP EXTENSION {extension}")
        db.commit()
    except DBAPIError as exc:
        if db.in_transaction:
            db.rollback()
        return f"What was made there could not be removed ({server_problem(exc, display(store_url(url)))}); drop " \
               "and create the database again before the next try."
    finally:
        db.close()
        engine.dispose()
    return ""


def _copy(src: Db, dst: Db) -> dict[str, int]:
    """Every table's rows, ids kept, in one transaction with the triggers held; sequences set past the ids."""
    tables = [t for t in src.tables() if t not in NOT_COPIED]
    missing = sorted(set(tables) - set(dst.tables()))
    if missing:
        raise UserError(f"The new database lacks tables the SQLite store has ({', '.join(missing)}); nothing was "
                        "copied. Update the program on this computer.")
    counts = {}
    dst.begin()
    try:
        dst.execute("SET LOCAL session_replication_role = replica")
        for table in tables:
            cols = src.columns(table)
            if set(cols) != set(dst.columns(table)):
                raise UserError(f"The table {table} has other columns in the new database; nothing was copied. "
                                "Update the program on this computer.")
            types = dst.column_types(table)
            rows = [tuple(str(v) if v is not None and types[c] == "text" and not isinstance(v, str) else v
                          for c, v in zip(cols, r, strict=True)) for r in _rows(src, table, cols)]
            placeholders = ", ".join("?" for _ in cols)
            dst.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({placeholders})", rows)
            counts[table] = len(rows)
            for col in cols:
                seq = dst.execute("SELECT pg_get_serial_sequence(?, ?)", (table, col)).fetchone()[0]
                if seq is not None:
                    dst.execute(f"SELECT setval(?, coalesce((SELECT max({col}) FROM {table}), 0) + 1, false)", (seq,))
        dst.commit()
    except BaseException:
        if dst.in_transaction:
            dst.rollback()
        raise
    return counts


def compare(src: Db, dst: Db) -> str:
    """'' when every table (the trail included) holds the same rows with the same values in both stores, else the
    first difference in words. Rows are matched by primary key (text sorts differently on the two engines)."""
    for table in (t for t in src.tables() if t not in NOT_COPIED):
        cols, key = src.columns(table), src.primary_key(table)
        at = [cols.index(k) for k in key] or list(range(len(cols)))
        a = {tuple(r[i] for i in at): r for r in _rows(src, table, cols)}
        b = {tuple(r[i] for i in at): r for r in _rows(dst, table, cols)}
        if len(a) != len(b) or a.keys() != b.keys():
            return f"{table} has {counted(len(a), 'row')} there and {len(b)} here"
        for k, ra in a.items():
            for c, va, vb in zip(cols, ra, b[k], strict=True):
                if not _same(va, vb):
                    return f"{table} row {k[0] if len(k) == 1 else k} differs in {c}"
    return ""
