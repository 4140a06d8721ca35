"""The clinic store: one SQLite file (WAL, foreign keys on, every change in one transaction). The clinic and the
training databases carry a role marker inside, so a training store can never open (and so never write) the clinic
database, nor the other way round."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from workstation.checksum import sha256_of
from workstation.errors import UserError
from workstation.keys import IdentityCipher, key_id, trail_key
from workstation.protocols.model import Protocol
from workstation.store import leases
from workstation.store.connection import (
    BUSY_TIMEOUT_MS,
    busy_error,
    connect,
    connect_server,
    display,
    store_url,
)
from workstation.store.db import Db, IntegrityError, OperationalError, Record, is_busy
from workstation.store.export import export_dict
from workstation.store.identity import identity_in, insert_identity, read_identity, refuse_identity
from workstation.store.paths import default_db_path
from workstation.store.pg_trail import set_writer
from workstation.store.records import (
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
    model_name,
)
from workstation.store.rows import area_from, course_from, session_from
from workstation.store.trail import default_actor, register_functions
from workstation.store.upgrade import schema_version
from workstation.store.validate import (
    DOSE_MAX_MJ_CM2,
    INTERVAL_MAX_DAYS,
    SESSIONS_MAX,
    an_id,
    check_area,
    check_override,
    check_response,
    check_screening_item,
    check_treatment,
    flag,
    ids,
    not_future,
    number,
    text,
)

log = logging.getLogger(__name__)
SHA256 = re.compile(r"^[0-9a-f]{64}$")
PSEUDONYM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{2,31}$")
# The text typed is not repeated: it may be a name typed in the wrong field, and messages go to the log.
INVALID_PSEUDONYM = "The pseudonym typed is not valid: use 3–32 letters, digits and hyphens (never a name)."




def _trail_key_problem(conn: Db, path: Path) -> str:
    """'' if this workstation's trail key is the store's (recorded in meta on first use), else a sentence."""
    if not conn.has_table("audit_trail"):
        return ""
    mine = key_id(trail_key(), "trail")
    row = conn.execute("SELECT value FROM meta WHERE key = 'trail_key_id'").fetchone()
    if row is None:  # the first workstation records its key's fingerprint (another process may at the same moment)
        try:
            conn.execute("INSERT INTO meta (key, value) VALUES ('trail_key_id', ?) ON CONFLICT (key) DO NOTHING",
                         (mine,))
        except OperationalError as exc:
            if is_busy(exc):
                raise busy_error(path) from exc
            raise
        row = conn.execute("SELECT value FROM meta WHERE key = 'trail_key_id'").fetchone()
    if row[0] == mine:
        return ""
    return ("This workstation does not have the clinic's audit-trail key (the store's trail is chained with another "
            "key), so nothing can be written to this store here: a row written with this key would break the trail "
            "for good. Copy the clinic's keys to this workstation from their backup, then open the store again.")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ClinicStore:
    """One connection, used from the thread that opened it; another thread opens its own ClinicStore on the same
    file (WAL lets readers and one writer work at once)."""

    def __init__(self, conn: Db, path: Path | str, role: str) -> None:
        self._conn = conn
        self.path = path
        """The SQLite file, or (PostgreSQL) the store's URL without its password."""
        self.role = role
        self.actor = default_actor()
        """Who the audit trail names for every write: the signed-in account (`sign_in`), else the OS account."""
        self._reason = ""
        self.account: str | None = None
        """The signed-in account (operators.sign_in, or the window's sign-in): while it is set, every write first
        checks that the account is still active, so a disabled account stops writing at once."""
        self._cipher: IdentityCipher | None = None
        self._root_for_now: Path | None = None  # a root adopted by a read-only connection (settle_recordings_root)
        if conn.dialect == "sqlite":
            register_functions(conn.raw, lambda: self.actor, lambda: self._reason, trail_key())
        self.trail_key_problem = _trail_key_problem(conn, path)
        """Why this workstation may not write here ('' when it may): its trail key is not the one the store's trail
        is chained with, so every row it wrote would break the chain for good."""

    @property
    def cipher(self) -> IdentityCipher:
        """The workstation's identity key (created on first use; workstation.keys)."""
        if self._cipher is None:
            self._cipher = IdentityCipher.load()
        return self._cipher

    def refuse_identity_in(self, patient_id: int, text: str, what: str, *, compact: bool = False) -> None:
        """UserError if `text`, written about this patient, contains the identity on file (the free text guard)."""
        if text and text.strip():
            refuse_identity(text, self.identity(patient_id), what, compact=compact)

    # ---- opening -------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path | str | None = None, *, training: bool,
             recordings_root: Path | str | None = None, read_only: bool = False) -> ClinicStore:
        """Open (creating and migrating if needed) the clinic database, or with training=True the training one.
        A database marked with the other role is refused before anything is written to it. `recordings_root` (the
        recordings folder in force) is settled against the root the store records (settle_recordings_root); with
        `read_only` (commands that only read) the store's recorded root is never changed: a root adopted by the rule
        is used for this connection only."""
        role = "training" if training else "clinic"
        url = store_url(path if path is not None else default_db_path(training=training))
        if url.get_backend_name() == "sqlite":
            path = Path(url.database).expanduser()
            store = cls(connect(path, role), path, role)
        else:
            store = cls(connect_server(url, role), display(url), role)
        if recordings_root is not None:
            store.settle_recordings_root(Path(recordings_root), write=not read_only)
        return store

    def settle_recordings_root(self, wanted: Path, *, write: bool) -> Path | None:
        """The one rule for the recordings root: the folder in force (`wanted`) is adopted when the store records
        none yet, or when none of the recordings indexed relative to the recorded root is under it any more while
        at least one is under `wanted` (the recordings were moved there). Otherwise the recorded root stays, since
        the paths linked relative to it depend on it; a typo'd folder holds no recordings and is never adopted.
        `write=False` adopts for this connection only. Returns the root in force. (`store set-recordings-root`
        changes it explicitly.)"""
        wanted = wanted.expanduser().absolute()
        recorded = self.recordings_root
        if recorded == wanted:
            return recorded
        if recorded is not None and not (self.recordings_found_under(recorded)[0] == 0
                                         and self.recordings_found_under(wanted)[0] > 0):
            log.info("recordings root of %s stays %s (the recordings folder in force, %s, does not hold its "
                     "recordings)", self.path, recorded, wanted)
            return recorded
        if write:
            log.info("recordings root of %s: %s -> %s (%s)", self.path, recorded, wanted,
                     "first set" if recorded is None else "the recordings were moved there")
            self.set_recordings_root(wanted)
        else:
            self._root_for_now = wanted
        return wanted

    def recordings_found_under(self, root: Path) -> tuple[int, int]:
        """(found, indexed): how many of the recordings indexed relative to the recordings root exist as files under
        `root`, and how many are indexed so."""
        relative = [Path(r["path"]) for r in self._all("SELECT path FROM recordings")
                    if not Path(r["path"]).is_absolute()]
        return sum((root / p).is_file() for p in relative), len(relative)

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
    def transaction(self, reason: str = "") -> Iterator[Db]:
        """Every change goes through here: all of it is written, or none of it. Each row written is trailed with
        the current actor and `reason` (workstation.store.trail).

        Raises UserError (in words) when another program holds the store's write lock past the busy timeout."""
        try:
            self._conn.begin()
        except OperationalError as exc:
            if is_busy(exc):
                raise busy_error(self.path) from exc
            raise
        self._reason = reason
        try:
            if self.trail_key_problem:
                raise UserError(self.trail_key_problem)
            if self._conn.dialect == "postgresql":
                set_writer(self._conn, self.actor, reason, BUSY_TIMEOUT_MS)
            if self.account is not None:
                row = self._conn.execute("SELECT active FROM operators WHERE account = ?", (self.account,)).fetchone()
                if row is None or not row[0]:
                    raise UserError(f"The account {self.account} was disabled by an administrator: nothing was "
                                    "saved. Someone with an active account must sign in.")
            yield self._conn
        except BaseException as exc:
            self._reason = ""
            self._conn.rollback()
            if isinstance(exc, OperationalError) and is_busy(exc):
                raise busy_error(self.path) from exc
            raise
        self._reason = ""
        try:
            self._conn.commit()
        except OperationalError as exc:
            if self._conn.in_transaction:
                self._conn.rollback()
            if is_busy(exc):
                raise busy_error(self.path) from exc
            raise

    def _one(self, sql: str, args: Iterable[Any] = ()) -> Record | None:
        return self._conn.execute(sql, tuple(args)).fetchone()

    def _all(self, sql: str, args: Iterable[Any] = ()) -> list[Record]:
        return self._conn.execute(sql, tuple(args)).fetchall()

    # ---- patients --------------------------------------------------------------------------------------------
    def create_patient(self, pseudonym: str | None = None, identity: Identity | None = None) -> Patient:
        pseudonym = pseudonym or "CX-" + secrets.token_hex(4).upper()
        if not PSEUDONYM.match(pseudonym):
            raise UserError(INVALID_PSEUDONYM)
        refuse_identity(pseudonym, identity, "pseudonym", compact=True)
        exists = UserError(f"A patient with pseudonym {pseudonym} already exists; choose another.")
        if self.find_patient(pseudonym):
            raise exists
        created = _now()
        with self.transaction() as c:
            # Checked again under the write lock: another process may have created it since the look-up above.
            if c.execute("SELECT 1 FROM patients WHERE pseudonym = ?", (pseudonym,)).fetchone():
                raise exists
            pid = c.execute("INSERT INTO patients (pseudonym, created_at) VALUES (?, ?) RETURNING id",
                            (pseudonym, created)).fetchone()[0]
            if identity is not None:
                insert_identity(c, self.cipher, int(pid), identity)
        return Patient(int(pid), pseudonym, created)

    def find_patient(self, pseudonym: str) -> Patient | None:
        row = self._one("SELECT * FROM patients WHERE pseudonym = ?", (pseudonym,))
        return Patient(row["id"], row["pseudonym"], row["created_at"]) if row else None

    def get_patient(self, pseudonym: str) -> Patient:
        if not PSEUDONYM.match(pseudonym):
            raise UserError(INVALID_PSEUDONYM)
        patient = self.find_patient(pseudonym)
        if patient is None:
            raise UserError(f"No patient has the pseudonym {pseudonym}; check the id or create the patient.")
        return patient

    def add_identity(self, patient_id: int, identity: Identity) -> None:
        """Record the identifying fields of a patient who has none on file (they are never overwritten here)."""
        pseudonym = self._one("SELECT pseudonym FROM patients WHERE id = ?", (patient_id,))
        if pseudonym is not None and identity_in(pseudonym[0], identity, compact=True):
            raise UserError(f"The pseudonym {pseudonym[0]} contains this identity, so it would identify the patient "
                            "wherever it appears; register the patient again under a neutral pseudonym.")
        try:
            with self.transaction() as c:
                insert_identity(c, self.cipher, patient_id, identity)
        except IntegrityError as exc:
            raise UserError("This patient already has an identity on file; it is not changed here.") from exc

    def identity(self, patient_id: int) -> Identity | None:
        """The decrypted identity, or None. UserError when this workstation's key cannot decrypt it."""
        return read_identity(self._conn, self.cipher, patient_id)

    # ---- screening and MED -----------------------------------------------------------------------------------
    def add_screening_answer(self, patient_id: int, item_id: str, answer: bool, answered_on: date,
                             answered_by: str, notes: str = "") -> None:
        self._patient(patient_id)
        if not isinstance(answered_by, str) or not answered_by.strip():
            raise UserError("Say who took the screening answer (answered_by is empty).")
        check_screening_item(item_id)
        flag(answer, f"answer to screening item {item_id}")
        if not isinstance(notes, str):
            raise UserError(f"The screening note must be text, not {notes!r}.")
        not_future(answered_on, "screening answer date", earliest=self._birth(patient_id))
        self.refuse_identity_in(patient_id, notes, "screening note")
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
        self._patient(patient_id)
        if not isinstance(device_model, str) or not device_model.strip():
            raise UserError("An MED needs the device model it was measured on.")
        device_model = model_name(device_model)  # compared without regard to case or spacing (records.model_key)
        number(med_mj_cm2, "MED", 0, DOSE_MAX_MJ_CM2, "mJ/cm²", lo_open=True)
        not_future(measured_on, "MED measurement date", earliest=self._birth(patient_id))
        with self.transaction() as c:
            c.execute("INSERT INTO med_measurements (patient_id, device_model, med_mj_cm2, measured_on) "
                      "VALUES (?, ?, ?, ?)", (patient_id, device_model, float(med_mj_cm2), measured_on.isoformat()))

    def meds(self, patient_id: int) -> list[MedMeasurement]:
        rows = self._all("SELECT * FROM med_measurements WHERE patient_id = ? ORDER BY measured_on, id", (patient_id,))
        return [MedMeasurement(r["device_model"], r["med_mj_cm2"], date.fromisoformat(r["measured_on"]),
                               r["id"])
                for r in rows]

    # ---- areas and courses -----------------------------------------------------------------------------------
    def add_area(self, patient_id: int, label: str, body_region: str, lesion_type: str, size_cm2: float,
                 skin_type: str, *, scar_age_months: int | None = None, scar_kind: str | None = None,
                 distinct_place: bool = False) -> Area:
        """Add a treatment area: a place on the body, once. A patient's open areas have unique labels; a new area on
        a region where the patient already has an open one needs distinct_place=True (the clinician says it is
        another place; for the same place, use that area). Raises UserError in words."""
        self._patient(patient_id)
        check_area(label, body_region, lesion_type, size_cm2, skin_type, scar_age_months, scar_kind)
        flag(distinct_place, "distinct-place answer")
        label = label.strip()
        self.refuse_identity_in(patient_id, label, "area label", compact=True)
        open_areas = [a for a in self.areas(patient_id) if a.closed_on is None]
        same_label = next((a for a in open_areas if a.label == label), None)
        if same_label is not None:
            raise UserError(f"This patient already has an open area labelled {label!r} (on the "
                            f"{same_label.body_region}); use that area, or give the new one another label.")
        same_region = [a.label for a in open_areas if a.body_region == body_region]
        if same_region and not distinct_place:
            raise UserError(f"This patient already has an area on the {body_region} ({', '.join(same_region)}). If "
                            "it is the same place, use that area; if it is a distinct place, say so to add it.")
        with self.transaction() as c:
            aid = c.execute("INSERT INTO areas (patient_id, label, body_region, lesion_type, size_cm2, skin_type, "
                            "scar_age_months, scar_kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                            (patient_id, label, body_region, lesion_type, float(size_cm2), skin_type,
                             scar_age_months, scar_kind)).fetchone()[0]
        return self.area(int(aid))

    def find_or_create_area(self, patient_id: int, label: str, body_region: str, lesion_type: str, size_cm2: float,
                            skin_type: str, **kw: Any) -> Area:
        """The patient's open area with this label (it must be on the same region), or a new one (add_area)."""
        text(label, "area label")
        found = next((a for a in self.areas(patient_id) if a.closed_on is None and a.label == label.strip()), None)
        if found is None:
            return self.add_area(patient_id, label, body_region, lesion_type, size_cm2, skin_type, **kw)
        wanted = {"region": (found.body_region, body_region), "lesion type": (found.lesion_type, lesion_type),
                  "skin type": (found.skin_type, skin_type)}
        for k in ("scar_kind", "scar_age_months"):
            if kw.get(k) is not None:
                wanted[k.replace("_", " ")] = (getattr(found, k), kw[k])
        differ = [f"{what} {old!s} on file, {new!s} given" for what, (old, new) in wanted.items() if old != new]
        if differ:
            raise UserError(f"The patient's open area {label!r} does not match the one given ({'; '.join(differ)}). "
                            "Correct the area on file (with a reason) if it has changed, or give the new area "
                            "another label.")
        return found

    def close_area(self, area_id: int, closed_on: date, *, who: str, reason: str) -> Area:
        """Close an area (no more treatment planned); its label may then be used again. Kept in area_changes."""
        before = self.area(area_id)
        not_future(closed_on, "closing date")
        if before.closed_on is not None or not isinstance(reason, str) or not isinstance(who, str) or \
                not reason.strip() or not who.strip():
            raise UserError("An area is closed once, with a reason and who closes it.")
        with self.transaction(reason.strip()) as c:
            c.execute("UPDATE areas SET closed_on = ? WHERE id = ?", (closed_on.isoformat(), area_id))
            c.execute("INSERT INTO area_changes (area_id, field, old, new, reason, who, at) VALUES "
                      "(?, 'closed_on', '', ?, ?, ?, ?)", (area_id, closed_on.isoformat(), reason.strip(), who, _now()))
        return self.area(area_id)

    def correct_area(self, area_id: int, *, who: str, reason: str, label: str | None = None,
                     body_region: str | None = None, lesion_type: str | None = None, size_cm2: float | None = None,
                     skin_type: str | None = None, scar_age_months: int | None = None,
                     scar_kind: str | None = None, distinct_place: bool = False) -> Area:
        """Change an area's description (the fields given), keeping each change with its reason in area_changes, in
        one transaction. The dose engine plans from the area as it is now: an area reclassified `pih` gets no UV.
        Moving an area to a region where the patient has another open area needs distinct_place=True (as add_area).
        A closed area is not changed."""
        if not isinstance(reason, str) or not reason.strip():
            raise UserError("Say why the area is changed: the reason is kept with the change.")
        if not isinstance(who, str) or not who.strip():
            raise UserError("Say who changes the area (who is empty).")
        flag(distinct_place, "distinct-place answer")
        before = self.area(area_id)
        if before.closed_on is not None:
            raise UserError(f"Area {before.label} was closed on {before.closed_on.isoformat()}; a closed area is "
                            "not changed.")
        wanted = {"label": label, "body_region": body_region, "lesion_type": lesion_type,
                  "size_cm2": size_cm2, "skin_type": skin_type, "scar_age_months": scar_age_months,
                  "scar_kind": scar_kind}
        after = dataclasses.replace(before, **{k: v for k, v in wanted.items() if v is not None})
        check_area(after.label, after.body_region, after.lesion_type, after.size_cm2, after.skin_type,
                   after.scar_age_months, after.scar_kind, kind_fit=after.scar_kind != before.scar_kind)
        self.refuse_identity_in(before.patient_id, after.label, "area label", compact=True)
        self.refuse_identity_in(before.patient_id, reason, "reason")
        changed = [f for f in wanted if getattr(after, f) != getattr(before, f)]
        if not changed:
            raise UserError(f"Area {before.label}: nothing to change (the values are the ones it has).")
        same_region = [a.label for a in self.areas(before.patient_id) if a.id != area_id and a.closed_on is None
                       and a.body_region == after.body_region]
        if "body_region" in changed and same_region and not distinct_place:
            raise UserError(f"This patient already has an area on the {after.body_region} ({', '.join(same_region)}). "
                            f"If area {before.label} is the same place, use that area; if it is a distinct place, "
                            "say so to move it there.")
        if "label" in changed and any(a.label == after.label and a.id != area_id and a.closed_on is None
                                      for a in self.areas(before.patient_id)):
            raise UserError(f"This patient already has an open area labelled {after.label!r}; choose another label.")
        at = _now()
        with self.transaction(reason.strip()) as c:
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
        row = self._one("SELECT * FROM areas WHERE id = ?", (an_id(area_id, "area"),))
        if row is None:
            raise UserError(f"There is no treatment area {area_id}.")
        return area_from(row)

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
        row = self._one("SELECT * FROM courses WHERE id = ?", (an_id(course_id, "course"),))
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
        course = self.course(an_id(course_id, "course"))
        not_future(session_date, "session date",
                   earliest=(course.started_on, f"the course's start ({course.started_on.isoformat()})"))
        if device_model is not None:
            device_model = model_name(text(device_model, "device model"))
        if plan is not None and not isinstance(plan, dict):
            raise UserError(f"A session's plan must be the plan's dictionary (SessionPlan.to_dict()), not {plan!r}.")
        for area in (plan or {}).get("areas", []):
            for o in area.get("overrides", []):
                if area.get("area_id") not in course.area_ids:
                    raise UserError(f"The plan overrides area {area.get('area_id')!r}, which is not in the course.")
                check_override(o["field"], o["proposed"], o["value"], o["reason"], o["who"], o["at"])
        with self.transaction() as c:
            leases.bump_version(c, course_id, (plan or {}).get("course_version"))  # a stale plan: UserError
            sid = int(c.execute("INSERT INTO sessions (course_id, session_date, plan_json, device_model, state, "
                                "process, started_at, recording_path, room) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                                "RETURNING id",
                                (course_id, session_date.isoformat(), json.dumps(plan) if plan else None,
                                 device_model, state, process, _now(),
                                 None if recording_path is None else str(recording_path),
                                 leases.live_room(c, course_id, process))).fetchone()[0])
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

    def end_session(self, session_id: int, treatments: list[Treatment], state: str | None, note: str = "") -> None:
        """In ONE transaction (one commit): each treatment's running total written as journal_treatment writes it,
        then (unless `state` is None) the session closed as close_session closes it. All of it or none: UserError
        in words when the store refuses a treatment (e.g. a second light session on the area that day)."""
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
                              (state, _now(), note, session_id))
        except IntegrityError as exc:
            if t is None:
                raise
            if t.modality == "light" and (why := leases.light_conflict(self, session_id, t.area_id)):
                raise UserError(why) from exc
            raise UserError("The treatment was not saved: the session and the area must exist and the modality is "
                            "light or needling.") from exc

    def session_state(self, session_id: int) -> dict[str, Any]:
        """The journal fields of one session: state, process, started_at, ended_at, recording_path, outcome_note, and
        the room whose lease it started under (issue 17)."""
        row = self._one("SELECT state, process, started_at, ended_at, recording_path, outcome_note, room FROM sessions "
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

    # ---- rooms: the course's lease and version (workstation/store/leases.py) ---------------------------------------
    def take_lease(self, course_id: int, *, room: str, account: str, process: str, host: str | None = None,
                   now: datetime | None = None) -> tuple[leases.Lease, leases.Lease | None]:
        """Take the course's lease for a start (leases.take): (lease taken, the free lease it replaced or None).
        Raises leases.LeaseRefused with the sentence while another start holds it."""
        return leases.take(self, course_id, room=room, account=account, process=process, host=host, now=now)

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
        """The course's version: bumped by every saved session start (a plan records the one it was computed from)."""
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
        except IntegrityError as exc:
            raise UserError("The response was not saved: the session and the area must exist, and an area has one "
                            "response per session.") from exc

    @property
    def recordings_root(self) -> Path | None:
        """The folder recording paths in this store are relative to (absolute), or None if none is recorded."""
        if self._root_for_now is not None:
            return self._root_for_now
        row = self._one("SELECT value FROM meta WHERE key = 'recordings_root'")
        return Path(row["value"]) if row else None

    def set_recordings_root(self, root: Path | str) -> None:
        """Record (or, after moving every recording with the folder, change) the recordings root. Paths already
        linked relative to the old root are then read relative to the new one."""
        with self.transaction() as c:
            c.execute("INSERT INTO meta (key, value) VALUES ('recordings_root', ?) "
                      "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                      (str(Path(root).expanduser().absolute()),))
        self._root_for_now = None

    def recording_path(self, session_id: int) -> Path | None:
        """The absolute path of the session's recording (a relative one is taken from the recordings root, or,
        in a store that records none, from the current folder as older versions did)."""
        linked = self.recording(session_id)
        if linked is None:
            return None
        path = Path(linked[0])
        return path if path.is_absolute() else (self.recordings_root or Path.cwd()) / path

    def session_for_recording(self, path: Path | str) -> int | None:
        """The id of the session whose recording is the file at `path`, or None if the store does not index it."""
        wanted = Path(path).expanduser().resolve()
        for row in self._all("SELECT session_id FROM recordings"):
            found = self.recording_path(row["session_id"])
            if found is not None and found.resolve() == wanted:
                return int(row["session_id"])
        return None

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
        """Index the session's recording: stored relative to the recordings root when it lies under it (so the
        store and the folder can move together), else as an absolute path; never relative to the current folder."""
        path = Path(path).expanduser().absolute()
        root = self.recordings_root
        if root is not None and path.is_relative_to(root):
            path = path.relative_to(root)
        sha256 = sha256.lower()
        if not SHA256.match(sha256):
            raise UserError("A recording's checksum must be a SHA-256: 64 hexadecimal characters.")
        try:
            with self.transaction() as c:
                c.execute("INSERT INTO recordings (session_id, path, sha256) VALUES (?, ?, ?)",
                          (session_id, str(path), sha256))
        except IntegrityError as exc:
            raise UserError("The recording was not linked: the session must exist and have no recording linked "
                            "yet.") from exc

    def record_override(self, session_id: int, area_id: int, field: str, proposed: float | None, value: float,
                        reason: str, who: str, at: str | None = None) -> None:
        at = check_override(field, proposed, value, reason, who, at)
        self._in_course(session_id, area_id, "override")
        self.refuse_identity_in(self.area(area_id).patient_id, reason, "reason")
        with self.transaction(reason) as c:
            c.execute("INSERT INTO plan_overrides (session_id, area_id, field, proposed, value, reason, who, at) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (session_id, area_id, field, proposed, value, reason, who,
                                                          at))

    def _birth(self, patient_id: int) -> tuple[date, str] | None:
        """(birth date, words) when an identity with a birth date is on file and this workstation can read it: no
        record of the patient may be dated before it (a session is bounded by its course's start)."""
        if self._one("SELECT 1 FROM patient_identity WHERE patient_id = ?", (patient_id,)) is None:
            return None
        try:
            born = self.identity(patient_id)
        except UserError:
            return None
        return (born.birth_date, "the patient's birth date on file") if born and born.birth_date else None

    def _patient(self, patient_id: int) -> None:
        if self._one("SELECT 1 FROM patients WHERE id = ?", (an_id(patient_id, "patient"),)) is None:
            raise UserError(f"There is no patient {patient_id}.")

    def _in_course(self, session_id: int, area_id: int, what: str) -> None:
        """UserError unless the session exists and `area_id` is one of its course's areas (so a treatment, response
        or override never lands on another patient's area, nor sums into another patient's UV record)."""
        row = self._one("SELECT course_id FROM sessions WHERE id = ?", (an_id(session_id, "session"),))
        if row is None:
            raise UserError(f"There is no session {session_id}; the {what} was not saved.")
        course = self.course(row["course_id"])
        if an_id(area_id, "area") not in course.area_ids:
            raise UserError(f"Area {area_id} is not an area of session {session_id}'s course ({course.protocol_id}, "
                            f"areas {', '.join(map(str, course.area_ids))}); the {what} must be on one of them. "
                            "Nothing was saved.")

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

    # ---- the clinic's recordings share (workstation/recording/share.py copies; these keep the index) ------------
    def queue_share_copy(self, session_id: int, workstation: str) -> None:
        """Mark the session's recording, not yet copied, to be copied to the clinic's share by `workstation` (the
        host that holds the file)."""
        with self.transaction() as c:
            c.execute("UPDATE recordings SET copy_from = ? WHERE session_id = ? AND shared_path IS NULL "
                      "AND (copy_from IS NULL OR copy_from <> ?)", (workstation, session_id, workstation))

    def recordings_to_share(self, workstation: str) -> list[tuple[int, Path, str]]:
        """(session id, absolute local path, sha256) of each recording `workstation` has still to copy to the share,
        oldest first. Recordings nobody queued yet (from before the share, or linked when a crashed session was
        closed) are queued for this workstation when their file is here."""
        for row in self._all("SELECT session_id FROM recordings WHERE copy_from IS NULL AND shared_path IS NULL"):
            local = self.recording_path(row["session_id"])
            if local is not None and local.is_file():
                self.queue_share_copy(row["session_id"], workstation)
        rows = self._all("SELECT session_id, sha256 FROM recordings WHERE copy_from = ? AND shared_path IS NULL "
                         "ORDER BY session_id", (workstation,))
        return [(r["session_id"], self.recording_path(r["session_id"]), r["sha256"]) for r in rows]

    def mark_shared(self, session_id: int, shared_path: Path) -> None:
        """The recording's copy at `shared_path` (absolute) on the clinic's share was verified."""
        with self.transaction() as c:
            c.execute("UPDATE recordings SET shared_path = ?, shared_at = ? WHERE session_id = ?",
                      (str(Path(shared_path).absolute()), _now(), session_id))

    def shared_path(self, session_id: int) -> Path | None:
        """Where the session's recording was copied on the clinic's share, or None (not copied, or no recording)."""
        row = self._one("SELECT shared_path FROM recordings WHERE session_id = ?", (session_id,))
        return Path(row["shared_path"]) if row is not None and row["shared_path"] else None

    def verify_recording(self, session_id: int, root: Path | None = None) -> bool:
        """Recompute the recording's SHA-256 and compare it with the index. A relative path is taken from `root` if
        given, else from the store's recordings root (recording_path)."""
        linked = self.recording(session_id)
        if linked is None:
            raise UserError(f"Session {session_id} has no recording linked.")
        path = root / linked[0] if root is not None else self.recording_path(session_id)
        assert path is not None
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
