"""The audit trail: an append-only, hash-chained record of every create, change and delete of clinical data.

21 CFR 11.10(e) asks for "secure, computer-generated, time-stamped audit trails to independently record the date and
time of operator entries and actions that create, modify, or delete electronic records", where "record changes shall
not obscure previously recorded information". Here:

- SQLite triggers on every table of the store (`meta` included) except the trail itself write one `audit_trail` row per
  inserted, updated or deleted row: when (UTC), who (the account signed in on the connection), what (table, row id,
  create/change/delete), the old and new values as JSON, and the reason given for the change. The triggers are made
  from the schema itself (`install_triggers`), so a table or column a later migration adds is trailed too.
- Triggers abort any UPDATE or DELETE of the trail, and of the two tables that are themselves audit records
  (`area_changes`, `plan_overrides`).
- Each row carries `hash = HMAC-SHA-256(trail key, previous row's hash, its own fields)`, with the clinic's trail key
  kept outside the store (workstation.keys): a row changed, removed or inserted around the program breaks the chain,
  and whoever has the store but not the key cannot compute a chain that verifies.
- The trigger bodies call functions that only this program registers on its connections (`cx_actor`, `cx_reason`,
  `cx_now`, `cx_chain`), and a guard on the trail needs them too: a write to clinical data or to the trail from another
  program fails ("no such function") instead of going unrecorded.
- `verify` also replays the trail (the last values it recorded for every row) against the tables as they are, and
  checks that every trigger is in place: a change made around the program with the triggers dropped is found too,
  also after the program wrote the row again (that change's old values differ from what the trail last recorded).
  A trigger found missing or disabled is reported, never mended quietly (workstation.store.trail_repair).
- On a PostgreSQL store the triggers are PL/pgSQL (workstation.store.pg_trail) with the same guarantees; `verify`,
  the replay and `chain_hash` are this module's for both engines.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from workstation.store import pg_trail

if TYPE_CHECKING:
    from workstation.store.db import Db

# The trail itself is not trailed (its rows are the record), nor Alembic's note of the schema revision (written by
# the schema upgrade, like the schema itself).
UNTRAILED = ("audit_trail", "alembic_version")
BASELINE_REASON = "present when the audit trail began"
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


def chain_hash(key: bytes, prev_hash: str, at_utc: str, who: str, action: str, table_name: str,
               row_id: int | None, old_json: str | None, new_json: str | None, reason: str) -> str:
    """HMAC-SHA-256 (hex) under the clinic's trail `key` of the previous row's hash and this row's fields, joined with
    the unit separator. The one definition used by the triggers (through `cx_chain`) and by `verify`."""
    fields = (prev_hash, at_utc, who, action, table_name, "" if row_id is None else str(row_id),
              "\x00" if old_json is None else old_json, "\x00" if new_json is None else new_json, reason)
    return hmac.new(key, _SEP.join(fields).encode("utf-8"), hashlib.sha256).hexdigest()


def default_actor() -> str:
    """Who writes when nobody signed in (headless tools, simulation): the operating-system account, marked as such."""
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):
        return "os:unknown"


def register_functions(conn: sqlite3.Connection, actor: Callable[[], str], reason: Callable[[], str],
                       key: bytes) -> None:
    """Register the functions the trail's triggers call. `actor()` and `reason()` are read at each write; `key` is
    the clinic's trail key (workstation.keys.trail_key)."""
    conn.create_function("cx_actor", 0, actor)
    conn.create_function("cx_reason", 0, reason)
    conn.create_function("cx_now", 0, _now)
    conn.create_function("cx_chain", 9, lambda *fields: chain_hash(key, *fields), deterministic=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _trigger_sql(conn: Db, table: str) -> list[str]:
    cols = conn.columns(table)
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


def _wanted_triggers(conn: Db) -> list[str]:
    tables = conn.tables()
    sql = []
    for t in tables:
        if t == "audit_trail":
            sql += [s for s in _trigger_sql(conn, t) if "_no_" in s]
            sql.append("CREATE TRIGGER trail_audit_trail_guard BEFORE INSERT ON audit_trail BEGIN "
                       "SELECT cx_now(); END")  # only this program's connections have the function
        elif t not in UNTRAILED:  # (alembic_version: no triggers, so the upgrade writes it)
            sql += _trigger_sql(conn, t)
    return sql


def install_triggers(conn: Db, found: list | tuple = ()) -> None:
    """Make the trail's triggers match the schema (every table, every column), replacing ones a migration made stale.
    Does nothing on a store without a trail table. Runs under the write lock; a no-op when already current. `found`
    (trail_repair.TriggerFinding, seen by the open before its upgrade) are noted in the trail, in the same
    transaction, when this call is the one that puts them back (trail_repair.record_repairs)."""
    from workstation.store.trail_repair import record_repairs, still_found

    if conn.dialect == "postgresql":
        if pg_trail.install(conn, list(found)):
            conn.begin()
            try:
                _baseline(conn)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        return
    if not conn.has_table("audit_trail"):
        return
    wanted = _wanted_triggers(conn)
    have = {r[0]: r[1] for r in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                                             "AND name LIKE 'trail_%'")}
    if set(have.values()) == set(wanted):
        return
    conn.begin()
    try:
        noted = still_found(conn, list(found)) if found else []
        wanted = _wanted_triggers(conn)
        for name in [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'trail_%'")]:
            conn.execute(f"DROP TRIGGER {name}")
        for statement in wanted:
            conn.execute(statement)
        _baseline(conn)
        record_repairs(conn, noted)
        conn.commit()
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise


def trailed_tables(conn: Db) -> list[str]:
    return [t for t in conn.tables() if t not in UNTRAILED]


def _row_json(conn: Db, table: str) -> list[tuple[int | None, str]]:
    """(row id, the row as the trail's JSON text) of every row of `table`."""
    cols = conn.columns(table)
    if conn.dialect == "postgresql":
        key = pg_trail.row_key_column(conn, table)
        return [(r[0], r[1]) for r in conn.execute(
            f"SELECT {'r.' + key if key else 'NULL'}, {pg_trail.row_json('r', table, cols)} FROM {table} AS r")]
    values = ", ".join(f"'{c}', " + ("'(secret, not copied)'" if (table, c) in REDACTED else c) for c in cols)
    return [(int(r[0]), r[1]) for r in conn.execute(f"SELECT rowid, json_object({values}) FROM {table}")]


def _baseline(conn: Db) -> None:
    """On a store that had rows before its trail began (an upgrade), record each as it was then, so the trail can
    account for every row. Runs inside install_triggers' transaction, once: only while the trail is empty."""
    if conn.execute("SELECT 1 FROM audit_trail LIMIT 1").fetchone():
        return
    for table in trailed_tables(conn):
        for rowid, new in _row_json(conn, table):
            append(conn, "create", table, rowid, None, new, BASELINE_REASON)


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
    in_chain: bool = True
    """False when every link holds and the tables or the triggers differ from what the trail records (the replay)."""
    repairs: tuple[str, ...] = ()
    """Each repair of the trail's triggers the trail records (trail_repair): a gap in which writes went unrecorded,
    found and closed since; said whether or not the trail is intact now."""

    @property
    def intact(self) -> bool:
        return self.first_broken_id is None


def append(conn: Db, action: str, table: str, row_id: int | None, old_json: str | None, new_json: str | None,
           reason: str) -> None:
    """One trail row written by the program itself (a baseline, a repair), numbered, stamped and chained as the
    triggers do it: on PostgreSQL by cx_trail_append; on SQLite in one INSERT … SELECT with cx_chain."""
    if conn.dialect == "postgresql":
        conn.execute("INSERT INTO audit_trail (action, table_name, row_id, old_json, new_json, reason) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (action, table, row_id, old_json, new_json, reason))
        return
    conn.execute("INSERT INTO audit_trail (at_utc, who, action, table_name, row_id, old_json, new_json, reason, "
                 "prev_hash, hash) SELECT a, w, ?, ?, ?, ?, ?, ?, p, cx_chain(p, a, w, ?, ?, ?, ?, ?, ?) FROM "
                 "(SELECT cx_now() AS a, cx_actor() AS w, "
                 f"coalesce((SELECT hash FROM audit_trail ORDER BY id DESC LIMIT 1), '{GENESIS}') AS p)",
                 (action, table, row_id, old_json, new_json, reason) * 2)


def verify(conn: Db, key: bytes, anchor: Any = None) -> TrailReport:
    """Check the trail under the clinic's trail `key`: every link of the chain from the first row, that the trail
    still reaches `anchor` (trail_anchor.Anchor: the highest row this workstation wrote or verified, kept outside
    the database; None: not checked), every trigger in place, and every row of every table as the trail last
    recorded it. Reports the first problem found."""
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
        if not hmac.compare_digest(chain_hash(key, prev_hash, *fields), digest):
            return TrailReport(count, rid, f"row {rid} was changed after it was written, or written without the "
                                           "clinic's trail key")
        prev, expected_id = digest, rid + 1
    if anchor is not None:
        from workstation.store.trail_anchor import check

        cut = check(conn, anchor)
        if cut is not None:
            return TrailReport(count, cut[0], cut[1])
    from workstation.store.trail_repair import repairs

    noted = tuple(repairs(conn))
    problem = "; and ".join(p for p in (_trigger_problem(conn), _replay(conn)) if p)
    if problem:
        return TrailReport(count, count + 1, problem, in_chain=False, repairs=noted)
    return TrailReport(count, None, "", repairs=noted)


def _index_problem(conn: Db) -> str:
    """A unique index of the schema (workstation/store/schema.py) that is gone: the guarantee it gives (e.g. one light
    session per area per day) no longer holds, whatever the trail says."""
    from sqlalchemy import inspect

    from workstation.store import schema

    inspector = inspect(conn.conn)
    for table in schema.metadata.sorted_tables:
        wanted = {i.name for i in table.indexes if i.unique}
        if wanted:
            have = {i["name"] for i in inspector.get_indexes(table.name)}
            for name in sorted(wanted - have):
                return (f"the unique index {name} of {table.name} was removed: the guarantee it gives no longer holds "
                        "(the database refuses nothing it should)")
    return ""


def _trigger_problem(conn: Db) -> str:
    index = _index_problem(conn)
    if index:
        return index
    from workstation.store.trail_repair import trigger_findings

    found = trigger_findings(conn)
    if not found:
        return ""
    more = f" (also not in place: {', '.join(f.name for f in found[1:])})" if found[1:] else ""
    return found[0].problem() + more


def recorded_row(conn: Db, table: str, row_id: int | None, key: dict | None = None) -> dict | None:
    """The values the trail last recorded for one row (None if it recorded none, or its delete): the row `row_id`,
    or with `key` ({primary key column: value}) the row with that key, whatever row id the trail gave it (a table
    without an integer key on PostgreSQL, or a store moved from SQLite)."""
    if key is None:
        row = conn.execute("SELECT action, new_json FROM audit_trail WHERE table_name = ? AND row_id = ? "
                           "ORDER BY id DESC LIMIT 1", (table, row_id)).fetchone()
        return json.loads(row[1]) if row is not None and row[0] != "delete" and row[1] else None
    for action, old_json, new_json in conn.execute(
            "SELECT action, old_json, new_json FROM audit_trail WHERE table_name = ? ORDER BY id DESC", (table,)):
        values = json.loads(new_json if action != "delete" else old_json)
        if all(values.get(c) == v for c, v in key.items()):
            return None if action == "delete" else values
    return None


def differs_from_trail(conn: Db, table: str, row_id: int | None, live: dict, fields: tuple[str, ...],
                       key: dict | None = None) -> str:
    """"" when `fields` of a live row are what the trail last recorded for it, else the first that differs (a row
    changed around the program: callers that trust it, sign-in and the store's role, refuse it). The row is found
    by `row_id`, or by its primary `key` values when given (recorded_row)."""
    if not conn.has_table("audit_trail"):
        return ""
    recorded = recorded_row(conn, table, row_id, key)
    if recorded is None:
        return "it is not in the audit trail"
    return next((f for f in fields if f in recorded and not same_value(recorded[f], live.get(f))), "")


def same_value(a: object, b: object) -> bool:
    """Two values of the trail's JSON alike. SQLite writes a REAL into JSON with 15 significant digits, PostgreSQL
    with as many as it takes to read back exactly, so a double recorded by one engine and read by the other may
    differ in its last digits: numbers compare within a relative 1e-14 (well above both roundings, far below any
    clinical change)."""
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool) \
            and not isinstance(b, bool) and (isinstance(a, float) or isinstance(b, float)):
        return math.isclose(a, b, rel_tol=1e-14)
    return a == b


def _name(k: tuple) -> str:
    if all(v is None for v in k):  # a trail row whose values carry no key: written into the trail directly
        return "without an id (a trail entry that names no row)"
    return str(k[0]) if len(k) == 1 else str(k)


def _replay(conn: Db) -> str:
    """Fold the trail into the last values it recorded for every row and compare them with the tables. Rows are
    matched by their primary key's values (the same on both engines, and after `store migrate`). A change or delete
    whose old values differ from what the trail last recorded for that row shows a change made around the program
    before it (e.g. while a trigger was disabled), even after the program has written the row again."""
    keys = {t: conn.primary_key(t) for t in trailed_tables(conn)}

    def key(table: str, values: dict) -> tuple:
        return tuple(values.get(c) for c in keys[table])

    recorded: dict[str, dict[tuple, dict | None]] = {t: {} for t in keys}
    gap = ""
    for rid, table, action, old_json, new_json in conn.execute(
            "SELECT id, table_name, action, old_json, new_json FROM audit_trail ORDER BY id"):
        if table not in keys:
            continue  # a table a later revision dropped, or a note of the trail's own (trail_repair)
        old = json.loads(old_json) if old_json else None
        if old is not None and not gap:
            last = recorded[table].get(key(table, old))
            changed = [c for c, v in old.items() if last and c in last and not same_value(last[c], v)]
            if changed:
                gap = f"{table} row {_name(key(table, old))} was changed around the program before trail row {rid} " \
                      f"(its old values there differ from what the trail last recorded in {', '.join(changed)})"
        if action == "delete":
            recorded[table][key(table, old)] = None
            continue
        new = json.loads(new_json)
        if action == "change" and old is not None and key(table, old) != key(table, new):
            recorded[table][key(table, old)] = None
        recorded[table][key(table, new)] = new
    for table in keys:
        live = {key(table, v): v for v in (json.loads(text) for _rowid, text in _row_json(conn, table))}
        trail = {k: v for k, v in recorded[table].items() if v is not None}
        for k in sorted(live.keys() - trail.keys(), key=str):
            return f"{table} row {_name(k)} is not in the trail: it was added around the program"
        for k in sorted(trail.keys() - live.keys(), key=str):
            return f"{table} row {_name(k)} is gone, but the trail has no delete of it: removed around the program"
        for k, values in sorted(trail.items(), key=lambda kv: str(kv[0])):
            changed = [c for c, v in values.items() if c in live[k] and not same_value(live[k][c], v)]
            if changed:
                return f"{table} row {_name(k)} differs from the trail in {', '.join(changed)}: changed around the " \
                       "program"
    return gap


def entries(conn: Db, *, table: str | None = None, row_id: int | None = None) -> list[TrailEntry]:
    """Trail rows, oldest first, optionally for one table (and row)."""
    sql, args = "SELECT id, at_utc, who, action, table_name, row_id, old_json, new_json, reason FROM audit_trail", []
    if table is not None:
        sql += " WHERE table_name = ?"
        args.append(table)
        if row_id is not None:
            sql += " AND row_id = ?"
            args.append(row_id)
    return [TrailEntry(*r) for r in conn.execute(sql + " ORDER BY id", args)]
