"""A trail trigger found missing, disabled or changed: named in words, and put back only with a note in the trail.

Writes made while a trigger of the audit trail (workstation.store.trail, pg_trail) was dropped or disabled are not in
the trail. Opening the store must therefore never mend the triggers quietly: that would hide the gap from `trail
verify`, which would find everything in place. Here:

- `trigger_findings` names what is not in place (both engines), before the schema upgrade of an open (so a table or
  column a new revision adds is not taken for tampering).
- A command that writes puts the triggers back (`trail.install_triggers`) and, in the same transaction, after they
  are back, appends one trail row per finding (`table_name` REPAIR_TABLE, action 'change', old and new JSON
  {"trigger", "table", "state"}): who put it back (the actor; on PostgreSQL also the database account), when (the
  row's time) and what was wrong, so the gap stays visible afterwards (`trail show`, and `trail verify` lists it).
- A command that only reads (ClinicStore.open(read_only=True): `trail verify`, lists, exports) leaves the triggers
  as it found them, so `trail verify` reports the finding (BROKEN, naming the trigger).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workstation.store import pg_trail

if TYPE_CHECKING:
    from workstation.store.db import Db

REPAIR_TABLE = "trail_triggers"
"""table_name of a trail row noting a repair of the trail's triggers (no such table: the replay skips these rows)."""
_STATE_WORDS = {"missing": "removed", "disabled": "disabled", "changed": "changed"}


@dataclass(frozen=True)
class TriggerFinding:
    """A trigger (or, on PostgreSQL, a trigger function) of the trail not in place: its name, the table it trails
    ('' for the chain's own functions) and its state: 'missing', 'disabled' or 'changed'."""

    name: str
    table: str
    state: str

    @property
    def what(self) -> str:
        kind = "trail function" if self.name.startswith("cx_") else "trail trigger"
        return f"the {kind} {self.name}"

    def problem(self) -> str:
        """The finding as `trail verify` says it."""
        writes = f"writes to {self.table}" if self.table else "writes"
        return f"{self.what} was {_STATE_WORDS[self.state]}: {writes} could have gone unrecorded since"


def trigger_findings(conn: Db) -> list[TriggerFinding]:
    """Every trigger (and trigger function) of the trail that the schema as it is now needs and that is missing,
    disabled or changed; [] on a store without a trail table. Reads only."""
    if not conn.has_table("audit_trail"):
        return []
    if conn.dialect == "postgresql":
        return [TriggerFinding(*f) for f in pg_trail.findings(conn)]
    from workstation.store.trail import _wanted_triggers

    have = {r[0]: r[1] for r in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                                             "AND name LIKE 'trail_%'")}
    found = []
    for sql in _wanted_triggers(conn):
        words = sql.split()
        name, table = words[2], words[words.index("ON") + 1]
        if name not in have:
            found.append(TriggerFinding(name, table, "missing"))
        elif have[name] != sql:
            found.append(TriggerFinding(name, table, "changed"))
    return found


def findings_at_open(conn: Db) -> list[TriggerFinding]:
    """What an open finds before its schema upgrade: the trail's triggers not in place on a store whose trail has
    begun (a store whose trail is still empty never had them: nothing was missed)."""
    if not conn.has_table("audit_trail") or not conn.execute("SELECT 1 FROM audit_trail LIMIT 1").fetchone():
        return []
    return trigger_findings(conn)


def record_repairs(conn: Db, found: list[TriggerFinding]) -> None:
    """Inside the transaction that put the triggers back (after them): one trail row per finding, chained as any
    trail row, naming who put it back, when and what was wrong."""
    from workstation.store.trail import append

    if conn.dialect == "postgresql":
        actor, account = conn.execute("SELECT current_setting('cicatrix.actor', true), session_user").fetchone()
        by = f"{actor or 'db:' + account} (database account {account})"
    else:
        by = conn.execute("SELECT cx_actor()").fetchone()[0]
    for f in found:
        state = {"missing": "missing (dropped)", "disabled": "disabled", "changed": "changed"}[f.state]
        reason = (f"{f.what} was found {state} when the store was opened, and was reinstalled by {by}: writes "
                  f"{'to ' + f.table + ' ' if f.table else ''}made while it was {state} are not in the trail")
        old = json.dumps({"trigger": f.name, "table": f.table, "state": f.state}, separators=(",", ":"))
        new = json.dumps({"trigger": f.name, "table": f.table, "state": "reinstalled"}, separators=(",", ":"))
        append(conn, "change", REPAIR_TABLE, None, old, new, reason)


def still_found(conn: Db, found: list[TriggerFinding]) -> list[TriggerFinding]:
    """Of `found` (seen before taking the lock), those still not in place now: another process that opened the
    store at the same moment may have put them back (and noted it) already."""
    now = {f.name for f in trigger_findings(conn)}
    return [f for f in found if f.name in now]


def repairs(conn: Db) -> list[str]:
    """Every repair of the trail's triggers the trail records, oldest first, as sentences with the row's time."""
    return [f"trail row {r[0]} ({r[1]}): {r[2]}" for r in conn.execute(
        "SELECT id, at_utc, reason FROM audit_trail WHERE table_name = ? ORDER BY id", (REPAIR_TABLE,))]
