"""The audit trail: an append-only, hash-chained record of every create, change and delete of clinical data.

21 CFR 11.10(e) asks for "secure, computer-generated, time-stamped audit trails to independently record the date and
time of operator entries and actions that create, modify, or delete electronic records", where "record changes shall
not obscure previously recorded information". Here:

- SQLite triggers on every table of the store except `meta` and the trail itself write one `audit_trail` row per
  inserted, updated or deleted row: when (UTC), who (the account signed in on the connection), what (table, row id,
  create/change/delete), the old and new values as JSON, and the reason given for the change. The triggers are made
  from the schema itself (`install_triggers`), so a table or column a later migration adds is trailed too.
- Triggers abort any UPDATE or DELETE of the trail, and of the two tables that are themselves audit records
  (`area_changes`, `plan_overrides`).
- Each row carries `hash = SHA-256(previous row's hash, its own fields)`: a row changed, removed or inserted around the
  program (with the sqlite3 tool, after dropping a trigger) breaks the chain, and `verify` names the first broken link.
- The trigger bodies call functions that only this program registers on its connections (`cx_actor`, `cx_reason`,
  `cx_now`, `cx_chain`): a write to clinical tables from another program fails ("no such function") instead of going
  unrecorded.
"""

from __future__ import annotations

import getpass
import hashlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

# Tables that are not clinical data: the store's own marker and the trail.
UNTRAILED = ("meta", "audit_trail")
# Secrets are never copied into the trail: the trail says they were set or changed, not their value.
REDACTED = {("operators", "password_hash")}
# Tables whose rows are audit records themselves: insert only.
APPEND_ONLY = ("audit_trail", "area_changes", "plan_overrides")
GENESIS = "0" * 64
_SEP = "\x1f"

TRAIL_MIGRATION = """
    CREATE TABLE audit_trail (
        id INTEGER PRIMARY KEY, at_utc TEXT NOT NULL, who TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('create', 'change', 'delete')),
        table_name TEXT NOT NULL, row_id INTEGER, old_json TEXT, new_json TEXT, reason TEXT NOT NULL DEFAULT '',
        prev_hash TEXT NOT NULL CHECK (length(prev_hash) = 64), hash TEXT NOT NULL CHECK (length(hash) = 64));
"""
"""Schema of the trail (a store migration); the triggers are made by `install_triggers`."""


def chain_hash(prev_hash: str, at_utc: str, who: str, action: str, table_name: str, row_id: int | None,
               old_json: str | None, new_json: str | None, reason: str) -> str:
    """SHA-256 (hex) of the previous row's hash and this row's fields, joined with the unit separator. The one
    definition used by the triggers (through `cx_chain`) and by `verify`."""
    fields = (prev_hash, at_utc, who, action, table_name, "" if row_id is None else str(row_id),
              "\x00" if old_json is None else old_json, "\x00" if new_json is None else new_json, reason)
    return hashlib.sha256(_SEP.join(fields).encode("utf-8")).hexdigest()


def default_actor() -> str:
    """Who writes when nobody signed in (headless tools, simulation): the operating-system account, marked as such."""
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):
        return "os:unknown"


def register_functions(conn: sqlite3.Connection, actor: Callable[[], str], reason: Callable[[], str]) -> None:
    """Register the functions the trail's triggers call. `actor()` and `reason()` are read at each write."""
    conn.create_function("cx_actor", 0, actor)
    conn.create_function("cx_reason", 0, reason)
    conn.create_function("cx_now", 0, lambda: datetime.now(UTC).isoformat(timespec="microseconds"))
    conn.create_function("cx_chain", 9, chain_hash, deterministic=True)


def _trigger_sql(conn: sqlite3.Connection, table: str) -> list[str]:
    cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    def value(ref: str, col: str) -> str:
        return "'(secret, not copied)'" if (table, col) in REDACTED else f"{ref}.{col}"

    def obj(ref: str) -> str:
        return "json_object(" + ", ".join(f"'{c}', {value(ref, c)}" for c in cols) + ")"
    insert = ("INSERT INTO audit_trail (at_utc, who, action, table_name, row_id, old_json, new_json, reason, "
              "prev_hash, hash) SELECT a, w, x, t, r, o, n, why, p, "
              "cx_chain(p, a, w, x, t, r, o, n, why) FROM (SELECT cx_now() AS a, cx_actor() AS w, '{x}' AS x, "
              "'{t}' AS t, {r} AS r, {o} AS o, {n} AS n, cx_reason() AS why, "
              f"coalesce((SELECT hash FROM audit_trail ORDER BY id DESC LIMIT 1), '{GENESIS}') AS p);")
    out = [
        f"CREATE TRIGGER trail_{table}_insert AFTER INSERT ON {table} BEGIN "
        + insert.format(x="create", t=table, r="NEW.rowid", o="NULL", n=obj("NEW")) + " END",
        f"CREATE TRIGGER trail_{table}_delete AFTER DELETE ON {table} BEGIN "
        + insert.format(x="delete", t=table, r="OLD.rowid", o=obj("OLD"), n="NULL") + " END",
    ]
    if table in APPEND_ONLY:
        for op in ("UPDATE", "DELETE"):
            out.append(f"CREATE TRIGGER trail_{table}_no_{op.lower()} BEFORE {op} ON {table} BEGIN "
                       f"SELECT RAISE(ABORT, '{table} is an audit record: it can be added to, never changed'); END")
        out.pop(1)  # a delete is refused before it could be trailed
    else:
        out.append(f"CREATE TRIGGER trail_{table}_update AFTER UPDATE ON {table} BEGIN "
                   + insert.format(x="change", t=table, r="NEW.rowid", o=obj("OLD"), n=obj("NEW")) + " END")
    return out


def _wanted_triggers(conn: sqlite3.Connection) -> list[str]:
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    sql = []
    for t in tables:
        if t == "audit_trail":
            sql += [s for s in _trigger_sql(conn, t) if "_no_" in s]
        elif t not in UNTRAILED:
            sql += _trigger_sql(conn, t)
    return sql


def install_triggers(conn: sqlite3.Connection) -> None:
    """Make the trail's triggers match the schema (every table, every column), replacing ones a migration made stale.
    Does nothing on a store without a trail table. Runs under the write lock; a no-op when already current."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit_trail'").fetchone():
        return
    wanted = _wanted_triggers(conn)
    have = {r[0]: r[1] for r in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                                             "AND name LIKE 'trail_%'")}
    if set(have.values()) == set(wanted):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        wanted = _wanted_triggers(conn)
        for name in [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'trail_%'")]:
            conn.execute(f"DROP TRIGGER {name}")
        for statement in wanted:
            conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@dataclass(frozen=True)
class TrailEntry:
    id: int
    at_utc: str
    who: str
    action: str
    table_name: str
    row_id: int | None
    old_json: str | None
    new_json: str | None
    reason: str


@dataclass(frozen=True)
class TrailReport:
    """The result of `verify`: rows checked and the first broken link (None when the chain is whole)."""
    rows: int
    first_broken_id: int | None
    problem: str

    @property
    def intact(self) -> bool:
        return self.first_broken_id is None


def verify(conn: sqlite3.Connection) -> TrailReport:
    """Recompute the chain from the first row; report the first row whose hash or link does not match."""
    prev = GENESIS
    count = 0
    expected_id = None
    for row in conn.execute("SELECT id, at_utc, who, action, table_name, row_id, old_json, new_json, reason, "
                            "prev_hash, hash FROM audit_trail ORDER BY id"):
        count += 1
        rid, *fields, prev_hash, digest = row
        if expected_id is not None and rid != expected_id:
            return TrailReport(count, rid, f"rows {expected_id}–{rid - 1} are missing before row {rid}")
        if prev_hash != prev:
            return TrailReport(count, rid, f"row {rid} does not follow the row before it (a row was removed, "
                                           "inserted or changed)")
        if chain_hash(prev_hash, *fields) != digest:
            return TrailReport(count, rid, f"row {rid} was changed after it was written")
        prev, expected_id = digest, rid + 1
    return TrailReport(count, None, "")


def entries(conn: sqlite3.Connection, *, table: str | None = None, row_id: int | None = None) -> list[TrailEntry]:
    """Trail rows, oldest first, optionally for one table (and row)."""
    sql, args = "SELECT id, at_utc, who, action, table_name, row_id, old_json, new_json, reason FROM audit_trail", []
    if table is not None:
        sql += " WHERE table_name = ?"
        args.append(table)
        if row_id is not None:
            sql += " AND row_id = ?"
            args.append(row_id)
    return [TrailEntry(*r) for r in conn.execute(sql + " ORDER BY id", args)]
