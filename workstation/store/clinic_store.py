"""The clinic store: one SQLite file (WAL, foreign keys on, every change in one transaction). The clinic and the
training databases carry a role marker inside, so a training store can never open (and so never write) the clinic
database, nor the other way round."""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from workstation.checksum import sha256_of
from workstation.errors import UserError
from workstation.protocols.model import LESION_TYPES, SKIN_TYPES, Protocol
from workstation.store.connection import connect
from workstation.store.export import export_dict
from workstation.store.migrations import schema_version
from workstation.store.paths import default_db_path
from workstation.store.records import (
    REPIGMENTATION_BANDS,
    Area,
    AreaChange,
    Course,
    Identity,
    MedMeasurement,
    Patient,
    Response,
    ScreeningAnswer,
    SessionRecord,
    Treatment,
)
from workstation.store.rows import area_from, course_from, session_from

SHA256 = re.compile(r"^[0-9a-f]{64}$")
PSEUDONYM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{2,31}$")


def _check_area(label: str, body_region: str, lesion_type: str, size_cm2: float, skin_type: str) -> None:
    if lesion_type not in LESION_TYPES:
        raise UserError(f"Lesion type {lesion_type!r} is unknown; use one of {', '.join(LESION_TYPES)}.")
    if skin_type not in SKIN_TYPES:
        raise UserError(f"Skin type {skin_type!r} is unknown; use a Fitzpatrick type {', '.join(SKIN_TYPES)}.")
    if not size_cm2 > 0 or not body_region.strip() or not label.strip():
        raise UserError("An area needs a label, a body region and a size above 0 cm².")


def _insert_identity(c: sqlite3.Connection, patient_id: int, identity: Identity) -> None:
    if not identity.family_name.strip() or not identity.given_name.strip():
        raise UserError("An identity needs a family name and a given name.")
    c.execute("INSERT INTO patient_identity VALUES (?, ?, ?, ?, ?)",
              (patient_id, identity.family_name.strip(), identity.given_name.strip(),
               identity.birth_date.isoformat() if identity.birth_date else None, identity.contact))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ClinicStore:
    """One connection, used from the thread that opened it; another thread opens its own ClinicStore on the same
    file (WAL lets readers and one writer work at once)."""

    def __init__(self, conn: sqlite3.Connection, path: Path, role: str) -> None:
        self._conn = conn
        self.path = path
        self.role = role

    # ---- opening -------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path | str | None = None, *, training: bool) -> ClinicStore:
        """Open (creating and migrating if needed) the clinic database, or with training=True the training one.
        A database marked with the other role is refused before anything is written to it."""
        role = "training" if training else "clinic"
        path = Path(path).expanduser() if path is not None else default_db_path(training=training)
        return cls(connect(path, role), path, role)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ClinicStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return schema_version(self._conn)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Every change goes through here: all of it is written, or none of it."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _one(self, sql: str, args: Iterable[Any] = ()) -> sqlite3.Row | None:
        cur = self._conn.execute(sql, tuple(args))
        cur.row_factory = sqlite3.Row
        return cur.fetchone()

    def _all(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        cur = self._conn.execute(sql, tuple(args))
        cur.row_factory = sqlite3.Row
        return cur.fetchall()

    # ---- patients --------------------------------------------------------------------------------------------
    def create_patient(self, pseudonym: str | None = None, identity: Identity | None = None) -> Patient:
        pseudonym = pseudonym or "CX-" + secrets.token_hex(4).upper()
        if not PSEUDONYM.match(pseudonym):
            raise UserError(f"Pseudonym {pseudonym!r} is not valid: use 3–32 letters, digits and hyphens.")
        if self.find_patient(pseudonym):
            raise UserError(f"A patient with pseudonym {pseudonym} already exists; choose another.")
        created = _now()
        with self.transaction() as c:
            pid = c.execute("INSERT INTO patients (pseudonym, created_at) VALUES (?, ?)", (pseudonym, created)).lastrowid
            if identity is not None:
                _insert_identity(c, int(pid), identity)
        return Patient(int(pid), pseudonym, created)

    def find_patient(self, pseudonym: str) -> Patient | None:
        row = self._one("SELECT * FROM patients WHERE pseudonym = ?", (pseudonym,))
        return Patient(row["id"], row["pseudonym"], row["created_at"]) if row else None

    def get_patient(self, pseudonym: str) -> Patient:
        patient = self.find_patient(pseudonym)
        if patient is None:
            raise UserError(f"No patient has the pseudonym {pseudonym}; check the id or create the patient.")
        return patient

    def add_identity(self, patient_id: int, identity: Identity) -> None:
        """Record the identifying fields of a patient who has none on file (they are never overwritten here)."""
        try:
            with self.transaction() as c:
                _insert_identity(c, patient_id, identity)
        except sqlite3.IntegrityError as exc:
            raise UserError("This patient already has an identity on file; it is not changed here.") from exc

    def identity(self, patient_id: int) -> Identity | None:
        row = self._one("SELECT * FROM patient_identity WHERE patient_id = ?", (patient_id,))
        if row is None:
            return None
        born = date.fromisoformat(row["birth_date"]) if row["birth_date"] else None
        return Identity(row["family_name"], row["given_name"], born, row["contact"])

    # ---- screening and MED -----------------------------------------------------------------------------------
    def add_screening_answer(self, patient_id: int, item_id: str, answer: bool, answered_on: date,
                             answered_by: str, notes: str = "") -> None:
        if not answered_by.strip():
            raise UserError("Say who took the screening answer (answered_by is empty).")
        with self.transaction() as c:
            c.execute("INSERT INTO screening_answers (patient_id, item_id, answer, answered_on, answered_by, notes) "
                      "VALUES (?, ?, ?, ?, ?, ?)",
                      (patient_id, item_id, int(bool(answer)), answered_on.isoformat(), answered_by, notes))

    def screening(self, patient_id: int) -> list[ScreeningAnswer]:
        """The latest answer to each item (earlier answers stay in the table)."""
        rows = self._all("SELECT * FROM screening_answers WHERE patient_id = ? ORDER BY answered_on, id", (patient_id,))
        latest = {r["item_id"]: r for r in rows}
        return [ScreeningAnswer(r["item_id"], bool(r["answer"]), date.fromisoformat(r["answered_on"]),
                                r["answered_by"], r["notes"]) for r in latest.values()]

    def add_med(self, patient_id: int, device_model: str, med_mj_cm2: float, measured_on: date) -> None:
        if not device_model.strip() or not med_mj_cm2 > 0:
            raise UserError("An MED needs the device model it was measured on and a dose above 0 mJ/cm².")
        with self.transaction() as c:
            c.execute("INSERT INTO med_measurements (patient_id, device_model, med_mj_cm2, measured_on) "
                      "VALUES (?, ?, ?, ?)", (patient_id, device_model, float(med_mj_cm2), measured_on.isoformat()))

    def meds(self, patient_id: int) -> list[MedMeasurement]:
        rows = self._all("SELECT * FROM med_measurements WHERE patient_id = ? ORDER BY measured_on, id", (patient_id,))
        return [MedMeasurement(r["device_model"], r["med_mj_cm2"], date.fromisoformat(r["measured_on"]))
                for r in rows]

    # ---- areas and courses -----------------------------------------------------------------------------------
    def add_area(self, patient_id: int, label: str, body_region: str, lesion_type: str, size_cm2: float,
                 skin_type: str) -> Area:
        _check_area(label, body_region, lesion_type, size_cm2, skin_type)
        with self.transaction() as c:
            aid = c.execute("INSERT INTO areas (patient_id, label, body_region, lesion_type, size_cm2, skin_type) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            (patient_id, label, body_region, lesion_type, float(size_cm2), skin_type)).lastrowid
        return Area(int(aid), patient_id, label, body_region, lesion_type, float(size_cm2), skin_type)

    def correct_area(self, area_id: int, *, who: str, reason: str, label: str | None = None,
                     body_region: str | None = None, lesion_type: str | None = None, size_cm2: float | None = None,
                     skin_type: str | None = None) -> Area:
        """Change an area's description (the fields given), keeping each change with its reason in area_changes, in
        one transaction. The dose engine plans from the area as it is now: an area reclassified `pih` gets no UV."""
        if not reason.strip():
            raise UserError("Say why the area is changed: the reason is kept with the change.")
        if not who.strip():
            raise UserError("Say who changes the area (who is empty).")
        before = self.area(area_id)
        wanted = {"label": label, "body_region": body_region, "lesion_type": lesion_type,
                  "size_cm2": None if size_cm2 is None else float(size_cm2), "skin_type": skin_type}
        after = dataclasses.replace(before, **{k: v for k, v in wanted.items() if v is not None})
        _check_area(after.label, after.body_region, after.lesion_type, after.size_cm2, after.skin_type)
        changed = [f for f in wanted if getattr(after, f) != getattr(before, f)]
        if not changed:
            raise UserError(f"Area {before.label}: nothing to change (the values are the ones it has).")
        at = _now()
        with self.transaction() as c:
            c.execute(f"UPDATE areas SET {', '.join(f'{f} = ?' for f in changed)} WHERE id = ?",  # noqa: S608
                      [getattr(after, f) for f in changed] + [area_id])
            c.executemany("INSERT INTO area_changes (area_id, field, old, new, reason, who, at) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?)",
                          [(area_id, f, str(getattr(before, f)), str(getattr(after, f)), reason.strip(), who, at)
                           for f in changed])
        return after

    def area_changes(self, area_id: int) -> list[AreaChange]:
        return [AreaChange(r["area_id"], r["field"], r["old"], r["new"], r["reason"], r["who"], r["at"])
                for r in self._all("SELECT * FROM area_changes WHERE area_id = ? ORDER BY id", (area_id,))]

    def areas(self, patient_id: int) -> list[Area]:
        return [area_from(r) for r in self._all("SELECT * FROM areas WHERE patient_id = ? ORDER BY id", (patient_id,))]

    def area(self, area_id: int) -> Area:
        row = self._one("SELECT * FROM areas WHERE id = ?", (area_id,))
        if row is None:
            raise UserError(f"There is no treatment area {area_id}.")
        return area_from(row)

    def create_course(self, patient_id: int, protocol: Protocol, area_ids: Iterable[int], started_on: date, *,
                      planned_sessions: int | None = None, interval_days: int | None = None) -> Course:
        rules = protocol.course
        sessions = rules.sessions if planned_sessions is None else planned_sessions
        interval = rules.interval_days if interval_days is None else interval_days
        if sessions < rules.sessions_min or (rules.sessions_max is not None and sessions > rules.sessions_max):
            top = rules.sessions_max if rules.sessions_max is not None else "no limit"
            raise UserError(f"{sessions} planned sessions is outside this protocol's {rules.sessions_min}–{top}.")
        if not rules.interval_min_days <= interval <= rules.interval_max_days:
            raise UserError(f"An interval of {interval} days is outside this protocol's "
                            f"{rules.interval_min_days}–{rules.interval_max_days} days.")
        area_ids = tuple(area_ids)
        if not area_ids:
            raise UserError("A course needs at least one treatment area.")
        for aid in area_ids:
            if self.area(aid).patient_id != patient_id:
                raise UserError(f"Area {aid} belongs to another patient; choose this patient's areas.")
        with self.transaction() as c:
            cid = c.execute("INSERT INTO courses (patient_id, protocol_id, protocol_version, planned_sessions, "
                            "interval_days, started_on) VALUES (?, ?, ?, ?, ?, ?)",
                            (patient_id, protocol.id, protocol.version, sessions, interval,
                             started_on.isoformat())).lastrowid
            c.executemany("INSERT INTO course_areas VALUES (?, ?)", [(cid, a) for a in area_ids])
        return self.course(int(cid))

    def course(self, course_id: int) -> Course:
        row = self._one("SELECT * FROM courses WHERE id = ?", (course_id,))
        if row is None:
            raise UserError(f"There is no course {course_id}.")
        areas = [r[0] for r in self._conn.execute(
            "SELECT area_id FROM course_areas WHERE course_id = ? ORDER BY area_id", (course_id,))]
        return course_from(row, areas)

    def courses(self, patient_id: int) -> list[Course]:
        return [self.course(r["id"]) for r in self._all("SELECT id FROM courses WHERE patient_id = ?", (patient_id,))]

    # ---- sessions, treatments, responses, recordings ---------------------------------------------------------
    def add_session(self, course_id: int, session_date: date, *, device_model: str | None = None,
                    plan: dict[str, Any] | None = None, state: str = "ended", process: str | None = None,
                    recording_path: Path | str | None = None) -> int:
        """Add a session with its plan (SessionPlan.to_dict()); the plan's overrides go to plan_overrides in the
        same transaction, so a change and its reason are never stored apart from the session. The session journal
        (workstation/journal.py) adds it with state 'in_progress', its process and its recording's path."""
        self.course(course_id)
        with self.transaction() as c:
            sid = int(c.execute("INSERT INTO sessions (course_id, session_date, plan_json, device_model, state, "
                                "process, started_at, recording_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                (course_id, session_date.isoformat(), json.dumps(plan) if plan else None,
                                 device_model, state, process, _now(),
                                 None if recording_path is None else str(recording_path))).lastrowid)
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
        try:
            with self.transaction() as c:
                c.execute("INSERT INTO treatments (session_id, area_id, modality, dose_mj_cm2, depth_mm, "
                          "stroke_rate_hz, passes) VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (session_id, t.area_id, t.modality, t.dose_mj_cm2, t.depth_mm, t.stroke_rate_hz, t.passes))
        except sqlite3.IntegrityError as exc:
            raise UserError(f"The treatment was not saved ({exc}): the session and area must exist, the modality is "
                            "light or needling, and each area has one treatment per modality per session.") from exc

    def journal_treatment(self, session_id: int, t: Treatment) -> None:
        """The session journal: write what an area has received so far in this session for one modality (the
        session's running total, not an increment), replacing the row a previous step or run wrote."""
        try:
            with self.transaction() as c:
                c.execute("INSERT INTO treatments (session_id, area_id, modality, dose_mj_cm2, depth_mm, "
                          "stroke_rate_hz, passes) VALUES (?, ?, ?, ?, ?, ?, ?) "
                          "ON CONFLICT (session_id, area_id, modality) DO UPDATE SET dose_mj_cm2 = excluded.dose_mj_cm2, "
                          "depth_mm = excluded.depth_mm, stroke_rate_hz = excluded.stroke_rate_hz, "
                          "passes = excluded.passes",
                          (session_id, t.area_id, t.modality, t.dose_mj_cm2, t.depth_mm, t.stroke_rate_hz, t.passes))
        except sqlite3.IntegrityError as exc:
            raise UserError("The treatment was not saved: the session and the area must exist and the modality is "
                            "light or needling.") from exc

    def close_session(self, session_id: int, state: str, note: str = "") -> None:
        """End a journalled session: completed, partial, aborted or crashed, with a sentence saying why."""
        if state not in ("completed", "partial", "aborted", "crashed"):
            raise ValueError(f"unknown session state {state!r}")
        with self.transaction() as c:
            c.execute("UPDATE sessions SET state = ?, ended_at = ?, outcome_note = ? WHERE id = ?",
                      (state, _now(), note, session_id))

    def session_state(self, session_id: int) -> dict[str, Any]:
        """The journal fields of one session: state, process, started_at, ended_at, recording_path, outcome_note."""
        row = self._one("SELECT state, process, started_at, ended_at, recording_path, outcome_note FROM sessions "
                        "WHERE id = ?", (session_id,))
        if row is None:
            raise UserError(f"There is no session {session_id}.")
        return dict(row)

    def course_of_session(self, session_id: int) -> int:
        row = self._one("SELECT course_id FROM sessions WHERE id = ?", (session_id,))
        if row is None:
            raise UserError(f"There is no session {session_id}.")
        return int(row["course_id"])

    def in_progress_sessions(self) -> list[dict[str, Any]]:
        """Sessions the journal shows still running (or left running by a process that died)."""
        return [dict(r) for r in self._all("SELECT id, course_id, process, started_at, recording_path FROM sessions "
                                           "WHERE state = 'in_progress' ORDER BY id")]

    def add_response(self, session_id: int, r: Response) -> None:
        if r.erythema_duration_h is not None and not 0 <= r.erythema_duration_h <= 24 * 60:
            raise UserError(f"Erythema lasting {r.erythema_duration_h:g} h is not possible: give 0–1440 hours.")
        if r.repigmentation_band is not None and r.repigmentation_band not in REPIGMENTATION_BANDS:
            raise UserError(f"Repigmentation band {r.repigmentation_band!r} is unknown; use one of "
                            f"{', '.join(REPIGMENTATION_BANDS)} (%).")
        try:
            with self.transaction() as c:
                c.execute("INSERT INTO responses (session_id, area_id, erythema_grade, blistering, pain_0_10, "
                          "repigmentation_band, notes, erythema_duration_h, swelling, itching, healed_on) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          (session_id, r.area_id, r.erythema_grade, int(r.blistering), r.pain_0_10,
                           r.repigmentation_band, r.notes, r.erythema_duration_h, int(r.swelling), int(r.itching),
                           r.healed_on.isoformat() if r.healed_on else None))
        except sqlite3.IntegrityError as exc:
            raise UserError(f"The response was not saved ({exc}): erythema grade is 0–4, pain 0–10, and an area "
                            "has one response per session.") from exc

    def confirm_healed(self, session_id: int, area_id: int, healed_on: date) -> None:
        """A clinician saw the erythema or blisters an area had after `session_id` healed on `healed_on`: the next
        plan may put light on it again (at the reduced dose the rules give)."""
        with self.transaction() as c:
            n = c.execute("UPDATE responses SET healed_on = ? WHERE session_id = ? AND area_id = ?",
                          (healed_on.isoformat(), session_id, area_id)).rowcount
            if not n:
                c.execute("INSERT INTO responses (session_id, area_id, healed_on) VALUES (?, ?, ?)",
                          (session_id, area_id, healed_on.isoformat()))

    def link_recording(self, session_id: int, path: Path | str, sha256: str) -> None:
        sha256 = sha256.lower()
        if not SHA256.match(sha256):
            raise UserError("A recording's checksum must be a SHA-256: 64 hexadecimal characters.")
        try:
            with self.transaction() as c:
                c.execute("INSERT INTO recordings (session_id, path, sha256) VALUES (?, ?, ?)",
                          (session_id, str(path), sha256))
        except sqlite3.IntegrityError as exc:
            raise UserError(f"The recording was not linked ({exc}): the session must exist and have no recording "
                            "linked yet.") from exc

    def record_override(self, session_id: int, area_id: int, field: str, proposed: float | None, value: float,
                        reason: str, who: str, at: str | None = None) -> None:
        with self.transaction() as c:
            c.execute("INSERT INTO plan_overrides (session_id, area_id, field, proposed, value, reason, who, at) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (session_id, area_id, field, proposed, value, reason, who,
                                                          at or _now()))

    def overrides(self, session_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all("SELECT * FROM plan_overrides WHERE session_id = ? ORDER BY id",
                                           (session_id,))]

    def history(self, course_id: int) -> list[SessionRecord]:
        """The course's sessions, oldest first, each with what was delivered and how each area responded."""
        out = []
        for s in self._all("SELECT s.*, r.path, r.sha256 FROM sessions s LEFT JOIN recordings r "
                           "ON r.session_id = s.id WHERE s.course_id = ? ORDER BY s.session_date, s.id", (course_id,)):
            treatments = self._all("SELECT * FROM treatments WHERE session_id = ?", (s["id"],))
            responses = self._all("SELECT * FROM responses WHERE session_id = ?", (s["id"],))
            out.append(session_from(s, treatments, responses))
        return out

    def recording(self, session_id: int) -> tuple[str, str] | None:
        """(path, sha256) of the session's recording, if one is linked."""
        row = self._one("SELECT path, sha256 FROM recordings WHERE session_id = ?", (session_id,))
        return (row["path"], row["sha256"]) if row else None

    def verify_recording(self, session_id: int, root: Path | None = None) -> bool:
        """Recompute the recording's SHA-256 (relative paths are taken from `root`) and compare it with the index."""
        linked = self.recording(session_id)
        if linked is None:
            raise UserError(f"Session {session_id} has no recording linked.")
        path = Path(linked[0]) if root is None else root / linked[0]
        try:
            return sha256_of(path) == linked[1]
        except OSError as exc:
            raise UserError(f"The recording {path} could not be read ({exc.strerror}).") from exc

    def export_patient(self, pseudonym: str) -> dict[str, Any]:
        """Everything about a patient's treatment under the pseudonym only: no identifying field is included."""
        p = self.get_patient(pseudonym)
        return export_dict(p, self.screening(p.id), self.meds(p.id),
                           [(a, self.area_changes(a.id)) for a in self.areas(p.id)],
                           [(c, self.history(c.id)) for c in self.courses(p.id)])
