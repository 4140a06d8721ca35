"""Rooms that cannot collide (issue 17): the lease on a course, one light session per area per day, and the
course's version against stale plans. docs/records.md says what each guarantees.

- **The lease.** Starting treatment takes the course's lease: one row per course (UNIQUE course_id) naming the room,
  the host, the operator's account, the process (journal.process_token), when it was taken and last renewed. Taking
  it is ONE statement (INSERT ... ON CONFLICT (course_id) DO UPDATE ... WHERE the lease is free), so of two processes
  trying at once the database lets exactly one write it. A lease is free when it was released, when its renewal is
  older than CRASH_TIMEOUT_S, or when its process is gone and it was taken on this host (where the process can be
  looked up). The row stays after release (released_at set): the last holder can still be named.
- **One light session per area per day.** A light treatment row carries its session's date in `light_on` (NULL for
  needling); a UNIQUE index on (area_id, light_on) refuses a second light session on the same area the same day,
  whatever the program does. The store fills `light_on`; triggers refuse a light row whose `light_on` is not its
  session's date (SQLite triggers, a PL/pgSQL trigger function on PostgreSQL). A resumed step of the same session
  updates its own row (the journal's upsert) and is not a second session.
- **The course's version.** Every saved session start bumps courses.version (UPDATE ... WHERE id = ? AND version = ?)
  in the transaction that inserts the session, and so does every later write a plan counts: a session's treatments
  (its journal), its closing (completed, partial, aborted, or crashed with the doses its recording shows) and a
  response (`changed`). A plan records the version it was computed from (SessionPlan.course_version), so a start
  based on a plan computed before any of those changes 0 rows and is refused with a sentence.

The schema is Alembic revision 0002 (workstation/store/alembic/versions/0002_leases.py) and schema.py.

Times are ISO-8601 UTC text passed from Python (comparable as text: one format, `stamp`), so the SQL is the same on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from workstation.errors import UserError

CRASH_TIMEOUT_S = 120.0
"""A lease not renewed for this long is free (its process is taken to be dead or cut off). Renewals come every
RENEW_INTERVAL_S, so a holder must miss four in a row, each of which may wait up to the store's 5 s busy timeout;
and two minutes is short beside the wait of a room whose colleague's program crashed (team choice, issue 17)."""
RENEW_INTERVAL_S = 30.0
"""How often a running session renews its lease (workstation.session.course_lease, on its own thread and connection)."""

LIGHT_ON = "CASE WHEN ? = 'light' THEN (SELECT session_date FROM sessions WHERE id = ?) END"
"""The value of treatments.light_on in an INSERT (parameters: modality, session id): the one place the store fills it."""


LIVE_ROOM = "(SELECT room FROM course_leases WHERE course_id = ? AND released_at IS NULL AND process = ?)"
"""The value of sessions.room in an INSERT (parameters: course id, the session's process): the room of the course's
lease that process holds, NULL for a session saved outside a lease (e.g. entered afterwards). Part of the INSERT, so
the write lock is held for one statement fewer."""


def stamp(at: datetime | None = None) -> str:
    """An ISO-8601 UTC time with milliseconds: the one format of the lease times, so they compare as text."""
    return (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")


def this_host() -> str:
    return socket.gethostname() or "this computer"


@dataclass(frozen=True)
class Lease:
    """A course's lease row. `holder` is a random token of one take (two takes by one process differ)."""

    course_id: int
    holder: str
    room: str
    host: str
    account: str
    process: str
    started_at: str
    renewed_at: str
    released_at: str | None

    def expired(self, now: datetime) -> bool:
        return datetime.fromisoformat(self.renewed_at) < now - timedelta(seconds=CRASH_TIMEOUT_S)

    def process_gone(self) -> bool:
        """Whether its process is gone (meaningful on its own host only)."""
        from workstation.processes import process_alive  # the one test of a process (pid and start time)

        return not process_alive(self.process)

    def free(self, now: datetime, host: str) -> bool:
        """Whether the next start may take it: released, not renewed within CRASH_TIMEOUT_S, or taken on `host` by
        a process that is gone."""
        return self.released_at is not None or self.expired(now) or (self.host == host and self.process_gone())


class LeaseRefused(UserError):
    """Another room holds the course's lease: the message says who, since when and what to do."""

    def __init__(self, message: str, lease: Lease) -> None:
        super().__init__(message)
        self.lease = lease


def lease_of(store: Any, course_id: int) -> Lease | None:
    row = store._one("SELECT course_id, holder, room, host, account, process, started_at, renewed_at, released_at "
                     "FROM course_leases WHERE course_id = ?", (course_id,))
    return Lease(**dict(row)) if row else None


def take(store: Any, course_id: int, *, room: str, account: str, process: str, host: str | None = None,
         now: datetime | None = None) -> tuple[Lease, Lease | None]:
    """Take the course's lease for this start: (the lease taken, the free lease it replaced or None). One atomic
    statement: exactly one of several processes taking it at once wins. Raises LeaseRefused (a sentence naming the
    patient's pseudonym, the room, the account and the time) while another start holds it."""
    host = host or this_host()
    now = now or datetime.now(UTC)
    if not isinstance(room, str) or not room.strip():
        raise UserError("This workstation has no room name: set clinic.room in the settings (or leave it out to use "
                        "the computer's name).")
    store.course(course_id)  # UserError if there is no such course
    before = lease_of(store, course_id)
    mine = Lease(course_id, secrets.token_hex(8), room.strip(), host, account, process, stamp(now), stamp(now), None)
    with store.transaction() as c:
        won = write(c, mine, before, now)
    if not won:
        raise refused(store, course_id)
    return mine, before if before is not None and before.released_at is None else None


def proposal(store: Any, course_id: int, *, room: str, account: str, process: str, host: str | None = None,
             now: datetime | None = None) -> tuple[Lease, Lease | None]:
    """The lease a start would take, checked but NOT written: (the lease proposed, the course's lease row now or
    None). Raises LeaseRefused (the sentence of `take`) while another start holds it, UserError without a room
    name. The session start writes the proposal in its own transaction (`write`, via ClinicStore.add_session), so
    a visit's start is one commit, not two; `write` decides atomically, this only reads."""
    host = host or this_host()
    now = now or datetime.now(UTC)
    if not isinstance(room, str) or not room.strip():
        raise UserError("This workstation has no room name: set clinic.room in the settings (or leave it out to use "
                        "the computer's name).")
    before = lease_of(store, course_id)
    if before is not None and not before.free(now, host):
        raise LeaseRefused(refusal_sentence(store, before), before)
    return Lease(course_id, secrets.token_hex(8), room.strip(), host, account, process, stamp(now), stamp(now),
                 None), before


def write(c: Any, mine: Lease, before: Lease | None, now: datetime | None = None) -> bool:
    """Inside the caller's write transaction `c`: write `mine` as the course's lease if it is free (released, not
    renewed within CRASH_TIMEOUT_S, its process gone on this host: `before`, the row read before, names that exact
    process) or already `mine` (its holder token). ONE statement (INSERT ... ON CONFLICT DO UPDATE ... WHERE), so of
    several processes writing at once exactly one wins. True when it was written."""
    now = now or datetime.now(UTC)
    # A lease whose process is gone on this host may be taken over: name that exact process in the condition, so
    # the statement still refuses if another start took it (with a live process) in between.
    dead_here = (before.process if before is not None and before.released_at is None and before.host == mine.host
                 and before.process_gone() else "")
    won = c.execute("INSERT INTO course_leases (course_id, holder, room, host, account, process, started_at, "
                    "renewed_at, released_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL) "
                    "ON CONFLICT (course_id) DO UPDATE SET holder = excluded.holder, room = excluded.room, "
                    "host = excluded.host, account = excluded.account, process = excluded.process, "
                    "started_at = excluded.started_at, renewed_at = excluded.renewed_at, released_at = NULL "
                    "WHERE course_leases.released_at IS NOT NULL OR course_leases.renewed_at < ? "
                    "OR (course_leases.host = ? AND course_leases.process = ?) "
                    "OR course_leases.holder = excluded.holder RETURNING holder",
                    (mine.course_id, mine.holder, mine.room, mine.host, mine.account, mine.process, mine.started_at,
                     stamp(now), stamp(now - timedelta(seconds=CRASH_TIMEOUT_S)), mine.host, dead_here)).fetchone()
    return won is not None and won[0] == mine.holder


def refused(store: Any, course_id: int) -> LeaseRefused:
    """The refusal of a lease `write` did not win (read after its transaction ended): who holds it, since when."""
    held = lease_of(store, course_id)
    if held is None:  # released and removed in between: nothing names a holder (cannot happen: rows stay)
        return LeaseRefused("Another room started this course at the same moment; nothing was started here. "
                            "Try again.", Lease(course_id, "", "", "", "", "", stamp(), stamp(), None))
    return LeaseRefused(refusal_sentence(store, held), held)


def renew(store: Any, course_id: int, holder: str, now: datetime | None = None) -> bool:
    """Renew a held lease; False when it is no longer this holder's (taken over after CRASH_TIMEOUT_S, or released)."""
    with store.transaction() as c:
        n = c.execute("UPDATE course_leases SET renewed_at = ? WHERE course_id = ? AND holder = ? "
                      "AND released_at IS NULL", (stamp(now), course_id, holder)).rowcount
    return n == 1


def release(store: Any, course_id: int, holder: str, now: datetime | None = None) -> bool:
    """Release a held lease (every ending of a session). False when it was not this holder's any more."""
    with store.transaction() as c:
        return release_in(c, course_id, holder, now)


def release_in(c: Any, course_id: int, holder: str, now: datetime | None = None) -> bool:
    """`release` inside the caller's write transaction `c` (the session's end: its closing and the lease's release,
    one commit). False when it was not this holder's any more."""
    return c.execute("UPDATE course_leases SET released_at = ? WHERE course_id = ? AND holder = ? "
                     "AND released_at IS NULL", (stamp(now), course_id, holder)).rowcount == 1


def live(store: Any, course_id: int, now: datetime | None = None) -> Lease | None:
    """The course's lease while a start holds it (not free), else None. The journal leaves the 'in_progress' session
    of the lease's own process alone: that process may be alive on another host."""
    lease = lease_of(store, course_id)
    if lease is None or lease.free(now or datetime.now(UTC), this_host()):
        return None
    return lease


def refusal_sentence(store: Any, lease: Lease) -> str:
    """"P-0042 is being treated in room 2 by dr-a since 10:14; ..." (the pseudonym only, never a name)."""
    row = store._one("SELECT p.pseudonym FROM courses c JOIN patients p ON p.id = c.patient_id WHERE c.id = ?",
                     (lease.course_id,))
    since = datetime.fromisoformat(lease.started_at).astimezone()
    free_at = (datetime.fromisoformat(lease.renewed_at) + timedelta(seconds=CRASH_TIMEOUT_S)).astimezone()
    return (f"{row['pseudonym'] if row else 'This patient'} is being treated in {lease.room} by {lease.account} since "
            f"{since:%H:%M}; this course cannot start here while that session runs. Wait until {lease.room} ends its "
            f"session. If the program there stopped, the course is free "
            f"{CRASH_TIMEOUT_S / 60:g} minutes after its last sign of life (at {free_at:%H:%M:%S}); start again then.")


def light_conflict(store: Any, session_id: int, area_id: int) -> str:
    """The sentence when area `area_id` already had a light session on session `session_id`'s date (another
    session), else ''. Used to word the unique index's refusal."""
    row = store._one(
        "SELECT s2.id, s2.room, a.label, p.pseudonym, s1.session_date FROM sessions s1 "
        "JOIN treatments t ON t.area_id = ? AND t.modality = 'light' AND t.light_on = s1.session_date "
        "JOIN sessions s2 ON s2.id = t.session_id AND s2.id <> s1.id JOIN areas a ON a.id = t.area_id "
        "JOIN patients p ON p.id = a.patient_id WHERE s1.id = ?", (area_id, session_id))
    if row is None:
        return ""
    where = f" in {row['room']}" if row["room"] else ""
    return (f"Area {row['label']} of {row['pseudonym']} already had a light session on {row['session_date']} "
            f"({store.session_label(row['id'])}{where}); a second light session on the same area on the same day is refused. "
            "Nothing was saved for this area; plan it for another day.")


def bump_version(c: Any, course_id: int, plan_version: int | None) -> None:
    """In the transaction saving a session's start: bump the course's version, checked against the version the plan
    was computed from (None: unchecked, e.g. a record entered afterwards). Raises UserError when the plan is stale;
    the caller's transaction then writes nothing."""
    if plan_version is None:
        c.execute("UPDATE courses SET version = version + 1 WHERE id = ?", (course_id,))
        return
    n = c.execute("UPDATE courses SET version = version + 1 WHERE id = ? AND version = ?",
                  (course_id, int(plan_version))).rowcount
    if n != 1:
        raise UserError(stale_sentence(c, course_id))


def changed(c: Any, session_id: int) -> None:
    """In the transaction writing what a plan counts of `session_id` (treatments, its closing, a response): bump its
    course's version, so that a plan computed before it is refused at its start (from the fresh tester of issue 17:
    a crashed room's doses closed into the journal after another room had planned, and that plan was accepted)."""
    c.execute("UPDATE courses SET version = version + 1 WHERE id = (SELECT course_id FROM sessions WHERE id = ?)",
              (session_id,))


def stale_sentence(c: Any, course_id: int) -> str:
    """The refusal of a plan computed before the course's last saved session start (room and session named)."""
    from workstation.store.session_label import session_label

    rows = c.execute("SELECT id, room FROM sessions WHERE course_id = ? ORDER BY id", (course_id,)).fetchall()
    last = session_label(c, rows[-1][0]) if rows else "a session of this course"
    room = rows[-1][1] if rows and rows[-1][1] else "another workstation"
    return (f"The plan was computed before {room} saved {last}; nothing was started. Plan the visit again "
            "(re-plan): the new plan counts that session.")


def check_version(store: Any, course_id: int, plan_version: int) -> None:
    """UserError (the stale-plan sentence) unless the course is still at `plan_version`; changes nothing."""
    if course_version(store, course_id) != plan_version:
        raise UserError(stale_sentence(store._conn, course_id))


def course_version(store: Any, course_id: int) -> int:
    row = store._one("SELECT version FROM courses WHERE id = ?", (course_id,))
    if row is None:
        raise UserError(f"There is no course {course_id}.")
    return int(row["version"])
