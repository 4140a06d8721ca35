"""The audit trail on a PostgreSQL store: PL/pgSQL triggers with the guarantees of SQLite's (workstation.store.trail).

- One trigger function per trailed table (`cx_trail_<table>`), made from the schema as SQLite's triggers are, writes one
  `audit_trail` row per inserted, updated or deleted row: the table, the row's id (its integer primary key; NULL for a
  table keyed otherwise, whose rows the replay finds by primary key), and its old and new values as compact JSON text
  (`{"col":value,...}` in column order, NULL as null; REDACTED columns never copied).
- A BEFORE INSERT trigger on `audit_trail` (`cx_trail_append`) completes every trail row, whoever inserts it: it takes
  a transaction-scoped advisory lock (TRAIL_LOCK), so writers of all processes make ONE chain in commit order, numbers
  the row after the last one (no gaps, even when a transaction rolls back), stamps the UTC time, who (the connection's
  `cicatrix.actor`) and why (`cicatrix.reason`), and chains it with pgcrypto's HMAC-SHA-256 under the connection's
  `cicatrix.trail_key` (set right after connect; never stored in the database), over exactly the fields
  `trail.chain_hash` joins, so one Python function verifies the trail of both engines. A connection without the key
  (another program) cannot write clinical data or the trail at all.
- UPDATE, DELETE and TRUNCATE of `audit_trail`, `area_changes` and `plan_overrides` raise; TRUNCATE of any trailed
  table raises (it would delete rows without row triggers).
- The functions are SECURITY DEFINER, owned by the schema's owner: an application role (workstation.store.roles) needs
  no right on the trail beyond INSERT and SELECT, and cannot drop or change the triggers.

JSON numbers differ from SQLite's in form only (a DOUBLE 1.0 is `1` here, `1.0` there): the chain covers the stored
text, and the replay compares parsed values."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workstation.errors import UserError

if TYPE_CHECKING:
    from workstation.store.db import Db

TRAIL_LOCK = 0x43495452  # "CITR": the advisory lock that orders the chain
TIME_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'  # datetime.isoformat(timespec="microseconds") in UTC
# The search path of the SECURITY DEFINER functions, with pg_temp LAST: unlisted, PostgreSQL searches a session's
# temporary schema first, so a role could shadow `audit_trail` with a temporary table of its own and the triggers
# would write the trail there (PostgreSQL docs, CREATE FUNCTION, "Writing SECURITY DEFINER Functions Safely").
FUNCTION_PATH = "public, pg_temp"
APPEND_ONLY_MESSAGE = "{table} is an audit record: it can be added to, never changed"
NO_KEY_MESSAGE = ("clinical data and the audit trail are written only by the Cicatrix program (this connection has "
                  "no trail key)")


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _chain_sql() -> str:
    """cx_chain: trail.chain_hash in SQL (pgcrypto's hmac; NULL JSON as the byte 0, which text cannot hold)."""
    return """
CREATE OR REPLACE FUNCTION cx_chain(p text, a text, w text, x text, t text, r bigint, o text, n text, why text,
                                    key_hex text) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
  SELECT encode(hmac(
    convert_to(p, 'UTF8') || '\\x1f'::bytea || convert_to(a, 'UTF8') || '\\x1f'::bytea || convert_to(w, 'UTF8')
    || '\\x1f'::bytea || convert_to(x, 'UTF8') || '\\x1f'::bytea || convert_to(t, 'UTF8') || '\\x1f'::bytea
    || convert_to(coalesce(r::text, ''), 'UTF8') || '\\x1f'::bytea || coalesce(convert_to(o, 'UTF8'), '\\x00'::bytea)
    || '\\x1f'::bytea || coalesce(convert_to(n, 'UTF8'), '\\x00'::bytea) || '\\x1f'::bytea
    || convert_to(why, 'UTF8'), decode(key_hex, 'hex'), 'sha256'), 'hex')
$f$"""


def _append_sql() -> str:
    from workstation.store.trail import GENESIS

    return f"""
CREATE OR REPLACE FUNCTION cx_trail_append() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = {FUNCTION_PATH} AS $f$
DECLARE key_hex text := current_setting('cicatrix.trail_key', true); last_id bigint; last_hash text;
BEGIN
  IF key_hex IS NULL OR length(key_hex) <> 64 THEN
    RAISE EXCEPTION {_q(NO_KEY_MESSAGE)} USING ERRCODE = '42501';
  END IF;
  PERFORM pg_advisory_xact_lock({TRAIL_LOCK});
  SELECT id, hash INTO last_id, last_hash FROM audit_trail ORDER BY id DESC LIMIT 1;
  NEW.id := coalesce(last_id, 0) + 1;
  NEW.prev_hash := coalesce(last_hash, '{GENESIS}');
  NEW.at_utc := to_char(clock_timestamp() AT TIME ZONE 'UTC', '{TIME_FORMAT}');
  NEW.who := coalesce(nullif(NEW.who, ''), nullif(current_setting('cicatrix.actor', true), ''), 'db:' || session_user);
  NEW.reason := coalesce(nullif(NEW.reason, ''), current_setting('cicatrix.reason', true), '');
  NEW.hash := cx_chain(NEW.prev_hash, NEW.at_utc, NEW.who, NEW.action, NEW.table_name, NEW.row_id, NEW.old_json,
                       NEW.new_json, NEW.reason, key_hex);
  RETURN NEW;
END $f$"""


def _refuse_sql() -> str:
    return f"""
CREATE OR REPLACE FUNCTION cx_trail_refuse() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  IF TG_OP = 'TRUNCATE' AND TG_TABLE_NAME NOT IN ('audit_trail', 'area_changes', 'plan_overrides') THEN
    RAISE EXCEPTION '% rows are deleted one by one, so that the audit trail records each', TG_TABLE_NAME
      USING ERRCODE = '42501';
  END IF;
  RAISE EXCEPTION {_q(APPEND_ONLY_MESSAGE.replace("{table}", "%"))}, TG_TABLE_NAME USING ERRCODE = '42501';
END $f$"""


def row_key_column(conn: Db, table: str) -> str | None:
    """The column whose value is a trail row's row_id: the table's single integer primary key, else None."""
    pk = conn.primary_key(table)
    if len(pk) == 1 and conn.column_types(table)[pk[0]] in ("integer", "bigint", "smallint"):
        return pk[0]
    return None


def row_json(ref: str, table: str, cols: list[str]) -> str:
    """SQL making the trail's JSON text of the row `ref` (NEW, OLD or a table alias) of `table`."""
    from workstation.store.trail import REDACTED

    parts = []
    for i, c in enumerate(cols):
        head = ("{" if i == 0 else ",") + f'"{c}":'
        value = "'\"(secret, not copied)\"'" if (table, c) in REDACTED else \
            f"coalesce(to_json({ref}.{c})::text, 'null')"
        parts.append(f"{_q(head)} || {value}")
    return " || ".join(parts) + " || '}'"


def _table_function(conn: Db, table: str) -> tuple[str, str]:
    """(name, CREATE FUNCTION) of the trigger function trailing `table`'s rows."""
    from workstation.store.trail import APPEND_ONLY

    cols = conn.columns(table)
    key = row_key_column(conn, table)
    rid = (lambda ref: f"{ref}.{key}") if key else (lambda ref: "NULL")
    insert = "INSERT INTO audit_trail (action, table_name, row_id, old_json, new_json) VALUES "
    body = [f"IF TG_OP = 'INSERT' THEN {insert}('create', {_q(table)}, {rid('NEW')}, NULL, {row_json('NEW', table, cols)});"]
    if table not in APPEND_ONLY:
        body.append(f"ELSIF TG_OP = 'UPDATE' THEN {insert}('change', {_q(table)}, {rid('NEW')}, "
                    f"{row_json('OLD', table, cols)}, {row_json('NEW', table, cols)});")
        body.append(f"ELSE {insert}('delete', {_q(table)}, {rid('OLD')}, {row_json('OLD', table, cols)}, NULL);")
    body.append("END IF; RETURN NULL;")
    name = f"cx_trail_{table}"
    sql = (f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
           f"SET search_path = {FUNCTION_PATH} AS $f$\nBEGIN\n  " + "\n  ".join(body) + "\nEND $f$")
    return name, sql


def wanted(conn: Db) -> tuple[dict[str, str], dict[str, tuple[str, str, str]]]:
    """What the trail needs on this schema: {function name: CREATE FUNCTION}, and {trigger name: (table, timing and
    events, function name)}."""
    from workstation.store.trail import APPEND_ONLY, UNTRAILED

    functions = {"cx_chain": _chain_sql(), "cx_trail_append": _append_sql(), "cx_trail_refuse": _refuse_sql()}
    triggers = {"trail_audit_trail_append": ("audit_trail", "BEFORE INSERT", "cx_trail_append")}
    for table in conn.tables():
        if table in APPEND_ONLY:  # per statement: refused even when no row matches
            triggers[f"trail_{table}_no_change"] = (table, "BEFORE UPDATE OR DELETE OR TRUNCATE", "cx_trail_refuse")
        elif table not in UNTRAILED:
            triggers[f"trail_{table}_no_truncate"] = (table, "BEFORE TRUNCATE", "cx_trail_refuse")
        if table in UNTRAILED:
            continue
        name, sql = _table_function(conn, table)
        functions[name] = sql
        events = "AFTER INSERT" if table in APPEND_ONLY else "AFTER INSERT OR UPDATE OR DELETE"
        triggers[f"trail_{table}"] = (table, events, name)
    return functions, triggers


def _body(create: str) -> tuple[str, str]:
    """(body, settings) of a CREATE FUNCTION as pg_proc holds them (prosrc; proconfig joined by ';')."""
    settings = f"search_path={FUNCTION_PATH}" if "SET search_path" in create else ""
    return create.split("$f$")[1], settings


def installed(conn: Db, *, disabled: bool = False) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """What is in place: {function name: (body, settings)}, {trigger name: (table, function name)} for enabled triggers (and
    disabled ones with `disabled`)."""
    functions = {r[0]: (r[1], r[2] or "") for r in conn.execute(
        "SELECT p.proname, p.prosrc, array_to_string(p.proconfig, ';') FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace "
        "WHERE s.nspname = current_schema() AND (p.proname LIKE 'cx\\_trail%' OR p.proname = 'cx_chain')")}
    triggers = {r[0]: (r[1], r[2]) for r in conn.execute(
        "SELECT t.tgname, c.relname, p.proname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace s ON s.oid = c.relnamespace "
        "WHERE NOT t.tgisinternal AND " + ("true" if disabled else "t.tgenabled <> 'D'") + " AND s.nspname = current_schema() "
        "AND t.tgname LIKE 'trail\\_%'")}
    return functions, triggers


def findings(conn: Db) -> list[tuple[str, str, str]]:
    """What of the trail is not in place as the schema needs it: (function or trigger name, its table or '', state),
    state 'missing' (dropped), 'disabled' (ALTER TABLE … DISABLE TRIGGER, or set to fire only in replica mode) or
    'changed' (another body, table or function). [] when all is in place."""
    want_f, want_t = wanted(conn)
    have_f = installed(conn)[0]
    found = []
    for name, sql in sorted(want_f.items()):
        if have_f.get(name) != _body(sql):
            table = name.removeprefix("cx_trail_") if name.startswith("cx_trail_") and name != "cx_trail_append" \
                else ("audit_trail" if name == "cx_trail_append" else "")
            found.append((name, table, "missing" if name not in have_f else "changed"))
    have_t = {r[0]: (r[1], r[2], r[3]) for r in conn.execute(
        "SELECT t.tgname, c.relname, p.proname, t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace s ON s.oid = c.relnamespace "
        "WHERE NOT t.tgisinternal AND s.nspname = current_schema() AND t.tgname LIKE 'trail\\_%'")}
    for name, (table, _events, function) in sorted(want_t.items()):
        if name not in have_t:
            found.append((name, table, "missing"))
        elif have_t[name][:2] != (table, function):
            found.append((name, table, "changed"))
        elif have_t[name][2] not in ("O", "A"):  # 'D' disabled; 'R' fires only under session_replication_role
            found.append((name, table, "disabled"))
    return found


def problem(conn: Db) -> str:
    """'' when every function and trigger of the trail is in place, as the schema needs it, else a sentence naming
    the first one missing, disabled or changed (workstation.store.trail_repair)."""
    from workstation.store.trail_repair import TriggerFinding

    found = findings(conn)
    return TriggerFinding(*found[0]).problem() if found else ""


def install(conn: Db, found: list | None = None) -> bool:
    """Make the trail's functions and triggers match the schema (a table or column a later revision adds is trailed
    at the next open). Returns True when something was (re)made. Each of `found` (trail_repair.TriggerFinding, seen
    by the open) still not in place under the lock is noted in the trail in the same transaction (trail_repair).
    Needs the schema owner's rights when anything is out of date; an account without them gets a sentence."""
    if not conn.has_table("audit_trail") or not problem(conn):
        return False
    from workstation.store.db import DatabaseError

    conn.begin()
    try:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (TRAIL_LOCK,))
        if problem(conn):  # another process may have made them while this one waited
            from workstation.store.trail_repair import record_repairs, still_found

            noted = still_found(conn, found) if found else []
            conn.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
            want_f, want_t = wanted(conn)
            have_t = installed(conn, disabled=True)[1]
            for name in have_t:
                conn.execute(f"DROP TRIGGER IF EXISTS {name} ON {have_t[name][0]}")
            for sql in want_f.values():
                conn.execute(sql)
            for name, (table, events, function) in want_t.items():
                each = "STATEMENT" if function == "cx_trail_refuse" else "ROW"
                conn.execute(f"CREATE TRIGGER {name} {events} ON {table} FOR EACH {each} EXECUTE FUNCTION {function}()")
            record_repairs(conn, noted)
        conn.commit()
    except DatabaseError as exc:
        conn.rollback()
        if "permission" in str(getattr(exc, "orig", exc)).lower() or "must be owner" in str(exc).lower():
            from workstation.progname import command

            found = problem(conn)
            raise UserError("The store's audit-trail triggers are not in place or out of date"
                            + (f" ({found})" if found else "") + ", and this account may "
                            "not make them: the clinic's administrator opens the store once as its owner "
                            f"(`{command('trail repair')}`, or `{command('store setup-roles')}` after an upgrade), "
                            "then the workstations can write.") from exc
        raise
    except BaseException:
        conn.rollback()
        raise
    return True


def configure(raw: object, key: bytes, actor: str) -> None:
    """Give one new psycopg connection the trail key and the default actor (session settings, never stored)."""
    with raw.cursor() as cur:  # type: ignore[attr-defined]
        cur.execute("SELECT set_config('cicatrix.trail_key', %s, false), set_config('cicatrix.actor', %s, false)",
                    (key.hex(), actor))
    raw.commit()  # type: ignore[attr-defined]


def set_writer(conn: Db, actor: str, reason: str, busy_timeout_ms: int) -> None:
    """At the start of a store transaction: who writes (for the session) and why (for this transaction), read by
    cx_trail_append; and the trail's lock taken at once, so the store's write transactions run one at a time as
    SQLite's BEGIN IMMEDIATE makes them (a check "under the write lock" sees every earlier commit, and two
    transactions can never each hold a row the other needs while waiting for the trail). A lock not had within
    `busy_timeout_ms` raises (lock_timeout; db.is_busy knows it), as SQLite's busy timeout does."""
    # ONE round trip: the select list is evaluated left to right, so lock_timeout is in force when the lock is asked
    # for (tests/test_store_pg_trail.py: a held store still answers with the busy sentence after the timeout)
    conn.execute("SELECT set_config('lock_timeout', ?, true), set_config('cicatrix.actor', ?, false), "
                 "set_config('cicatrix.reason', ?, true), pg_advisory_xact_lock(?)",
                 (f"{int(busy_timeout_ms)}ms", actor, reason, TRAIL_LOCK))
