"""Courses, sessions (the journal's rows), treatments, responses, overrides, the course's lease and version: the
part of the clinic store a visit writes (mixed into ClinicStore; workstation/store/clinic_store.py holds the
connection, patients and areas)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from workstation.errors import UserError
from workstation.protocols.model import Protocol
from workstation.store import leases
from workstation.store.db import IntegrityError
from workstation.store.records import (
    Course,
    Response,
    SessionRecord,
    Treatment,
    model_name,
)
from workstation.store.rows import course_from, now_text, session_from
from workstation.store.validate import (
    INTERVAL_MAX_DAYS,
    SESSIONS_MAX,
    an_id,
    check_override,
    check_response,
    check_treatment,
    ids,
    not_future,
    number,
    text,
)
from workstation.terminal import quoted
from workstation.words import session_named

log = logging.getLogger(__name__)


class CourseRecords:
    """Courses and what a visit writes of them: sessions, treatments, responses, overrides, the course's lease and
    version (a mixin of ClinicStore: it uses the store's connection, `transaction`, `_one` and `_all`)."""

    def create_course(self, patient_id: int, protocol: Protocol, area_ids: Iterable[int], started_on: date, *,
                      planned_sessions: int | None = None, interval_days: int | None = None) -> Course:
        self._patient(patient_id)
        rules = protocol.course
        sessions = rules.sessions if planned_sessions is None else planned_sessions
        interval = rules.interval_days if interval_days is None else interval_days
        number(sessions, "number of planned sessions", 1, SESSIONS_MAX, "", integer=True)
        number(interval, "interval between sessions", 1, INTERVAL_MAX_DAYS, "days", integer=True)
        sessions, interval = int(sessions), int(interval)
        if sessions < rules.sessions_min or (rules.sessions_max is not None and sessions > rules.sessions_max):
            top = rules.sessions_max if rules.sessions_max is not None else "no limit"
            raise UserError(f"{sessions} planned sessions is outside this protocol's {rules.sessions_min}–{top}.")
        if not rules.interval_min_days <= interval <= rules.interval_max_days:
            raise UserError(f"An interval of {interval} days is outside this protocol's "
                            f"{rules.interval_min_days}–{rules.interval_max_days} days.")
        not_future(started_on, "course start date", earliest=self._birth(patient_id))
        area_ids = ids(area_ids, "course's areas")
        if not area_ids:
            raise UserError("A course needs at least one treatment area.")
        for aid in area_ids:
            area = self.area(aid)
            if area.patient_id != patient_id:
                raise UserError(f"Area {aid} belongs to another patient; choose this patient's areas.")
            if area.closed_on is not None:
                raise UserError(f"Area {area.label} was closed on {area.closed_on.isoformat()}; a course is planned "
                                "on open areas only.")
        with self.transaction() as c:
            cid = c.execute("INSERT INTO courses (patient_id, protocol_id, protocol_version, planned_sessions, "
                            "interval_days, started_on) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                            (patient_id, protocol.id, protocol.version, sessions, interval,
                             started_on.isoformat())).fetchone()[0]
            c.executemany("INSERT INTO course_areas VALUES (?, ?)", [(cid, a) for a in area_ids])
        return self.course(int(cid))

    def find_or_create_course(self, patient_id: int, protocol: Protocol, area_ids: Iterable[int], started_on: date,
                              **kw: Any) -> Course:
        """The patient's latest course under this protocol (id and version) on exactly these areas, or a new one."""
        wanted = tuple(sorted(area_ids))
        found = [c for c in self.courses(patient_id) if c.protocol_id == protocol.id
                 and c.protocol_version == protocol.version and tuple(sorted(c.area_ids)) == wanted]
        if found:
            return max(found, key=lambda c: (c.started_on, c.id))
        return self.create_course(patient_id, protocol, wanted, started_on, **kw)

    def course(self, course_id: int) -> Course:
        found = self._courses_where("c.id = ?", an_id(course_id, "course"))
        if not found:
            raise UserError(f"There is no course {course_id}.")
        return found[0]

    def courses(self, patient_id: int) -> list[Course]:
        return self._courses_where("c.patient_id = ?", patient_id)

    def _courses_where(self, condition: str, value: int) -> list[Course]:
        """The courses matching `condition` (one `?`), oldest first, each with its areas: ONE statement (a course
        row per area, joined), not one per course and one more for its areas."""
        rows = self._all("SELECT c.*, ca.area_id AS course_area_id FROM courses c LEFT JOIN course_areas ca "
                         f"ON ca.course_id = c.id WHERE {condition} ORDER BY c.id, ca.area_id", (value,))
        out: list[Course] = []
        for i, row in enumerate(rows):
            if i == 0 or row["id"] != rows[i - 1]["id"]:
                areas = [r["course_area_id"] for r in rows[i:] if r["id"] == row["id"]]
                out.append(course_from(row, [a for a in areas if a is not None]))
        return out

    # ---- sessions, treatments, responses, recordings ---------------------------------------------------------

    def add_session(self, course_id: int, session_date: date, *, device_model: str | None = None,
                    plan: dict[str, Any] | None = None, state: str = "ended", process: str | None = None,
                    recording_path: Path | str | None = None, lease: leases.Lease | None = None,
                    start_key: str | None = None) -> int:
        """Add a session with its plan (SessionPlan.to_dict()); the plan's overrides go to plan_overrides in the
        same transaction, so a change and its reason are never stored apart from the session. The session journal
        (workstation/journal.py) adds it with state 'in_progress', its process and its recording's path. `lease`
        (leases.proposal, or one this start already holds): written first in the SAME transaction, so taking the
        course's lease and starting its session are one commit; leases.LeaseRefused (nothing written) when another
        start holds it, UserError when the plan is stale. `start_key` (a random token, Alembic 0007): the start's
        idempotency key; a start sent again with the key of one already saved (its commit went through while its
        client saw an error) returns that session's id and writes nothing."""
        course = self.course(an_id(course_id, "course"))
        not_future(session_date, "session date",
                   earliest=(course.started_on, f"the course's start ({course.started_on.isoformat()})"))
        if device_model is not None:
            device_model = model_name(text(device_model, "device model"))
        if plan is not None and not isinstance(plan, dict):
            raise UserError(f"A session's plan must be the plan's dictionary (SessionPlan.to_dict()), not {quoted(plan)}.")
        for area in (plan or {}).get("areas", []):
            for o in area.get("overrides", []):
                if area.get("area_id") not in course.area_ids:
                    raise UserError(f"The plan overrides area {quoted(area.get('area_id'))}, which is not in the course.")
                check_override(o["field"], o["proposed"], o["value"], o["reason"], o["who"], o["at"])
        if start_key is not None and not (isinstance(start_key, str) and 8 <= len(start_key) <= 64):
            raise ValueError("a start key is a random token of 8-64 characters")
        with self.transaction() as c:
            if start_key is not None and (done := c.execute("SELECT id, course_id FROM sessions WHERE start_key = ?",
                                                            (start_key,)).fetchone()) is not None:
                if int(done[1]) != course_id:
                    raise ValueError(f"start key {start_key!r} belongs to a session of another course")
                return int(done[0])  # this start was saved already: the same session, nothing written again
            if lease is not None and not leases.write(c, lease, None):
                raise leases.refused(self, course_id)  # another room won the lease: the transaction writes nothing
            leases.bump_version(c, course_id, (plan or {}).get("course_version"))  # a stale plan: UserError
            sid = int(c.execute("INSERT INTO sessions (course_id, session_date, plan_json, device_model, state, "
                                "process, started_at, recording_path, start_key, room) VALUES (?, ?, ?, ?, ?, ?, ?, "
                                f"?, ?, {leases.LIVE_ROOM}) "
                                "RETURNING id",
                                (course_id, session_date.isoformat(), json.dumps(plan) if plan else None,
                                 device_model, state, process, now_text(),
                                 None if recording_path is None else str(recording_path), start_key, course_id,
                                 process)).fetchone()[0])
            for area in (plan or {}).get("areas", []):
                for o in area.get("overrides", []):
                    c.execute("INSERT INTO plan_overrides (session_id, area_id, field, proposed, value, reason, who, "
                              "at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (sid, area["area_id"], o["field"], o["proposed"],
                                                                       o["value"], o["reason"], o["who"], o["at"]))
        return sid

    def session_plan(self, session_id: int) -> dict[str, Any] | None:
        row = self._one("SELECT plan_json FROM sessions WHERE id = ?", (session_id,))
        return json.loads(row["plan_json"]) if row and row["plan_json"] else None

    def add_treatment(self, session_id: int, t: Treatment) -> None:
        """Record what was delivered on one area (the dose engine's history reads these)."""
        check_treatment(t)
        self._in_course(session_id, t.area_id, "treatment")
        try:
            with self.transaction() as c:
                c.execute("INSERT INTO treatments (session_id, area_id, modality, dose_mj_cm2, depth_mm, "
                          f"stroke_rate_hz, passes, light_on) VALUES (?, ?, ?, ?, ?, ?, ?, {leases.LIGHT_ON})",
                          (session_id, t.area_id, t.modality, t.dose_mj_cm2, t.depth_mm, t.stroke_rate_hz, t.passes,
                           t.modality, session_id))
                leases.changed(c, session_id)
        except IntegrityError as exc:
            if t.modality == "light" and (why := leases.light_conflict(self, session_id, t.area_id)):
                raise UserError(why) from exc
            raise UserError("The treatment was not saved: the session and the area must exist, and an area has one "
                            "treatment per modality per session.") from exc

    def journal_treatment(self, session_id: int, t: Treatment) -> None:
        """The session journal: write what an area has received so far in this session for one modality (the
        session's running total, not an increment), replacing the row a previous step or run wrote."""
        self.end_session(session_id, [t], None)

    def close_session(self, session_id: int, state: str, note: str = "") -> None:
        """End a journalled session: completed, partial, aborted or crashed, with a sentence saying why."""
        self.end_session(session_id, [], state, note)

    def session_state(self, session_id: int) -> dict[str, Any]:
        """The journal fields of one session: state, process, started_at, ended_at, recording_path, outcome_note, and
        the room whose lease it started under (issue 17)."""
        row = self._one("SELECT state, process, started_at, ended_at, recording_path, outcome_note, room FROM sessions "
                        "WHERE id = ?", (session_id,))
        if row is None:
            raise UserError(f"There is no {session_named(session_id)}.")
        return dict(row)

    def course_of_session(self, session_id: int) -> int:
        row = self._one("SELECT course_id FROM sessions WHERE id = ?", (session_id,))
        if row is None:
            raise UserError(f"There is no {session_named(session_id)}.")
        return int(row["course_id"])

    def add_outcome_note(self, session_id: int, sentence: str) -> None:
        """Add a sentence to a closed session's outcome note (its state and end time stay as they are)."""
        with self.transaction() as c:
            c.execute("UPDATE sessions SET outcome_note = outcome_note || ? WHERE id = ?", (f"; {sentence}", session_id))

    def in_progress_sessions(self) -> list[dict[str, Any]]:
        """Sessions the journal shows still running (or left running by a process that died)."""
        return [dict(r) for r in self._all("SELECT id, course_id, process, started_at, recording_path FROM sessions "
                                           "WHERE state = 'in_progress' ORDER BY id")]

    # ---- rooms: the course's lease and version (workstation/store/leases.py) ---------------------------------------

    def end_session(self, session_id: int, treatments: list[Treatment], state: str | None, note: str = "", *,
                    lease: leases.Lease | None = None) -> bool:
        """In ONE transaction (one commit): each treatment's running total written as journal_treatment writes it,
        then (unless `state` is None) the session closed as close_session closes it, then `lease` (the course's
        lease this session holds) released. All of it or none: UserError in words when the store refuses a
        treatment (e.g. a second light session on the area that day). Returns whether `lease` was released here
        (False without one, or when it was no longer this start's)."""
        if state is not None and state not in ("completed", "partial", "aborted", "crashed"):
            raise ValueError(f"unknown session state {state!r}")
        t = None
        try:
            with self.transaction() as c:
                for t in treatments:
                    c.execute("INSERT INTO treatments (session_id, area_id, modality, dose_mj_cm2, depth_mm, "
                              f"stroke_rate_hz, passes, light_on) VALUES (?, ?, ?, ?, ?, ?, ?, {leases.LIGHT_ON}) "
                              "ON CONFLICT (session_id, area_id, modality) DO UPDATE SET "
                              "dose_mj_cm2 = excluded.dose_mj_cm2, depth_mm = excluded.depth_mm, "
                              "stroke_rate_hz = excluded.stroke_rate_hz, passes = excluded.passes",
                              (session_id, t.area_id, t.modality, t.dose_mj_cm2, t.depth_mm, t.stroke_rate_hz,
                               t.passes, t.modality, session_id))
                t = None
                if state is not None:
                    c.execute("UPDATE sessions SET state = ?, ended_at = ?, outcome_note = ? WHERE id = ?",
                              (state, now_text(), note, session_id))
                if treatments or state is not None:
                    leases.changed(c, session_id)
                released = lease is not None and leases.release_in(c, lease.course_id, lease.holder)
        except IntegrityError as exc:
            if t is None:
                raise
            if t.modality == "light" and (why := leases.light_conflict(self, session_id, t.area_id)):
                raise UserError(why) from exc
            raise UserError("The treatment was not saved: the session and the area must exist and the modality is "
                            "light or needling.") from exc
        return released

    def take_lease(self, course_id: int, *, room: str, account: str, process: str, host: str | None = None,
                   now: datetime | None = None) -> tuple[leases.Lease, leases.Lease | None]:
        """Take the course's lease for a start (leases.take): (lease taken, the free lease it replaced or None).
        Raises leases.LeaseRefused with the sentence while another start holds it."""
        return leases.take(self, course_id, room=room, account=account, process=process, host=host, now=now)

    def propose_lease(self, course_id: int, *, room: str, account: str, process: str,
                      host: str | None = None) -> tuple[leases.Lease, leases.Lease | None]:
        """The lease a start would take, checked but not written (leases.proposal): add_session(lease=...) writes it
        with the session's start, in one transaction. Raises leases.LeaseRefused while another start holds it."""
        return leases.proposal(self, course_id, room=room, account=account, process=process, host=host)

    def renew_lease(self, course_id: int, holder: str, now: datetime | None = None) -> bool:
        return leases.renew(self, course_id, holder, now)

    def release_lease(self, course_id: int, holder: str, now: datetime | None = None) -> bool:
        return leases.release(self, course_id, holder, now)

    def lease(self, course_id: int) -> leases.Lease | None:
        return leases.lease_of(self, course_id)

    def live_lease(self, course_id: int, now: datetime | None = None) -> leases.Lease | None:
        """The course's lease while a start holds it (not released, renewed in time, its process not gone here)."""
        return leases.live(self, course_id, now)

    def course_version(self, course_id: int) -> int:
        """The course's version: bumped by every saved session start and every later write a plan counts
        (leases.changed; a plan records the one it was computed from)."""
        return leases.course_version(self, course_id)

    def check_plan_version(self, course_id: int, plan_version: int) -> None:
        """UserError in words when the course changed since the plan was computed at `plan_version` (re-plan)."""
        leases.check_version(self, course_id, plan_version)

    def add_response(self, session_id: int, r: Response) -> None:
        check_response(r)
        self._in_course(session_id, r.area_id, "response")
        self.refuse_identity_in(self.area(r.area_id).patient_id, r.notes, "response note")
        try:
            with self.transaction() as c:
                c.execute("INSERT INTO responses (session_id, area_id, erythema_grade, blistering, pain_0_10, "
                          "repigmentation_band, notes, erythema_duration_h, swelling, itching, healed_on) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          (session_id, r.area_id, r.erythema_grade, int(r.blistering), r.pain_0_10,
                           r.repigmentation_band, r.notes, r.erythema_duration_h, int(r.swelling), int(r.itching),
                           r.healed_on.isoformat() if r.healed_on else None))
                leases.changed(c, session_id)
        except IntegrityError as exc:
            raise UserError("The response was not saved: the session and the area must exist, and an area has one "
                            "response per session.") from exc

    def confirm_healed(self, session_id: int, area_id: int, healed_on: date) -> None:
        """A clinician saw the erythema or blisters an area had after `session_id` healed on `healed_on`: the next
        plan may put light on it again (at the reduced dose the rules give)."""
        with self.transaction() as c:
            n = c.execute("UPDATE responses SET healed_on = ? WHERE session_id = ? AND area_id = ?",
                          (healed_on.isoformat(), session_id, area_id)).rowcount
            if not n:
                c.execute("INSERT INTO responses (session_id, area_id, healed_on) VALUES (?, ?, ?)",
                          (session_id, area_id, healed_on.isoformat()))

    def record_override(self, session_id: int, area_id: int, field: str, proposed: float | None, value: float,
                        reason: str, who: str, at: str | None = None) -> None:
        at = check_override(field, proposed, value, reason, who, at)
        self._in_course(session_id, area_id, "override")
        self.refuse_identity_in(self.area(area_id).patient_id, reason, "reason")
        with self.transaction(reason) as c:
            c.execute("INSERT INTO plan_overrides (session_id, area_id, field, proposed, value, reason, who, at) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (session_id, area_id, field, proposed, value, reason, who,
                                                          at))

    def _in_course(self, session_id: int, area_id: int, what: str) -> None:
        """UserError unless the session exists and `area_id` is one of its course's areas (so a treatment, response
        or override never lands on another patient's area, nor sums into another patient's UV record)."""
        row = self._one("SELECT course_id FROM sessions WHERE id = ?", (an_id(session_id, "session"),))
        if row is None:
            raise UserError(f"There is no {session_named(session_id)}; the {what} was not saved.")
        course = self.course(row["course_id"])
        if an_id(area_id, "area") not in course.area_ids:
            raise UserError(f"Area {area_id} is not an area of {self.session_label(session_id)} (its course: "
                            f"{course.protocol_id}, areas {', '.join(map(str, course.area_ids))}); the {what} must "
                            "be on one of them. "
                            "Nothing was saved.")

    def overrides(self, session_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all("SELECT * FROM plan_overrides WHERE session_id = ? ORDER BY id",
                                           (session_id,))]

    def history(self, course_id: int) -> list[SessionRecord]:
        """The course's sessions, oldest first, each with what was delivered and how each area responded."""
        with self._conn.snapshot():  # three statements, one committed state (not 1 + 2 per session)
            sessions = self._all("SELECT s.*, r.path, r.sha256 FROM sessions s LEFT JOIN recordings r "
                                 "ON r.session_id = s.id WHERE s.course_id = ? ORDER BY s.session_date, s.id",
                                 (course_id,))
            if not sessions:
                return []
            treatments = self._by_session("SELECT t.* FROM treatments t JOIN sessions s ON s.id = t.session_id "
                                          "WHERE s.course_id = ? ORDER BY t.session_id, t.area_id, t.modality",
                                          course_id)
            responses = self._by_session("SELECT r.* FROM responses r JOIN sessions s ON s.id = r.session_id "
                                         "WHERE s.course_id = ? ORDER BY r.session_id, r.area_id", course_id)
        return [session_from(s, treatments.get(s["id"], []), responses.get(s["id"], [])) for s in sessions]

    def _by_session(self, sql: str, course_id: int) -> dict[int, list[Any]]:
        out: dict[int, list[Any]] = {}
        for r in self._all(sql, (course_id,)):
            out.setdefault(r["session_id"], []).append(r)
        return out
