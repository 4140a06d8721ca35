"""The clinic store: one SQLite file (WAL, foreign keys on, every change in one transaction). The clinic and the
training databases carry a role marker inside, so a training store can never open (and so never write) the clinic
database, nor the other way round."""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from workstation.errors import UserError
from workstation.keys import IdentityCipher, key_id, trail_key, workstation_name
from workstation.store import trail_anchor
from workstation.store.connection import (
    BUSY_TIMEOUT_MS,
    busy_error,
    connect,
    connect_server,
    display,
    store_url,
    write_failure,
)
from workstation.store.course_records import CourseRecords
from workstation.store.db import DatabaseError, Db, IntegrityError, OperationalError, Record, is_busy
from workstation.store.export import export_dict
from workstation.store.identity import identity_in, insert_identity, read_identity, refuse_identity
from workstation.store.paths import default_db_path
from workstation.store.pg_trail import set_writer
from workstation.store.recording_index import RecordingIndex
from workstation.store.records import (
    Area,
    AreaChange,
    Identity,
    MedMeasurement,
    Patient,
    ScreeningAnswer,
    model_name,
)
from workstation.store.rows import area_from, now_text
from workstation.store.trail import default_actor, register_functions
from workstation.store.upgrade import schema_version
from workstation.store.validate import (
    DOSE_MAX_MJ_CM2,
    an_id,
    check_area,
    check_screening_item,
    flag,
    not_future,
    number,
    text,
)
from workstation.terminal import quoted

log = logging.getLogger(__name__)
PSEUDONYM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{2,31}$")
# The text typed is not repeated: it may be a name typed in the wrong field, and messages go to the log.
INVALID_PSEUDONYM = "The pseudonym typed is not valid: use 3–32 letters, digits and hyphens (never a name)."




def _trail_key_problem(conn: Db, path: Path, role: str) -> str:
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
                raise busy_error(path, role) from exc
            raise
        row = conn.execute("SELECT value FROM meta WHERE key = 'trail_key_id'").fetchone()
    if row[0] == mine:
        return ""
    return ("This workstation does not have the clinic's audit-trail key (the store's trail is chained with another "
            "key), so nothing can be written to this store here: a row written with this key would break the trail "
            "for good. Copy the clinic's keys to this workstation from their backup, then open the store again.")



class ClinicStore(CourseRecords, RecordingIndex):
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
        self.workstation = workstation_name()
        """This workstation's host name: whose recordings root and recordings this connection's index means."""
        self._root_for_now: Path | None = None  # a root adopted by a read-only connection (settle_recordings_root)
        if conn.dialect == "sqlite":
            register_functions(conn.raw, lambda: self.actor, lambda: self._reason, trail_key())
        self.trail_findings: list[str] = conn.trail_findings
        """The trail's triggers the open found missing, disabled or changed, in sentences: put back and noted in the
        trail, or (read_only) left as found (workstation.store.trail_repair). A command shows them."""
        self._anchored = trail_anchor.store_key(self) is not None
        self._anchor = trail_anchor.seen(self) if self._anchored else None
        self.trail_key_problem = _trail_key_problem(conn, path, role)
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
        `read_only` (commands that only read) the store's recorded root is never changed (a root adopted by the rule
        is used for this connection only), a store that does not exist is refused (UserError; nothing is created,
        not even its folder or schema), and trail triggers found not in place are left for `trail verify` to
        report (connection.settle_trail; `trail_findings` says them either way)."""
        role = "training" if training else "clinic"
        url = store_url(path if path is not None else default_db_path(training=training))
        if url.get_backend_name() == "sqlite":
            path = Path(url.database).expanduser()
            store = cls(connect(path, role, read_only=read_only), path, role)
        else:
            store = cls(connect_server(url, role, read_only=read_only), display(url), role)
        if recordings_root is not None:
            store.settle_recordings_root(Path(recordings_root), write=not read_only)
        return store

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
        except DatabaseError as exc:
            if (words := write_failure(self.path, exc, self.role)) is not None:
                raise words from exc
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
            self._rollback_quietly()
            if isinstance(exc, DatabaseError) and (words := write_failure(self.path, exc, self.role)) is not None:
                raise words from exc
            raise
        self._reason = ""
        try:
            self._conn.commit()
        except DatabaseError as exc:
            self._rollback_quietly()  # always: a failed commit leaves SQLAlchemy's transaction open but inactive
            if (words := write_failure(self.path, exc, self.role)) is not None:
                raise words from exc
            raise
        if self._anchored:  # the trail's end as committed, kept outside the database (trail_anchor)
            self._anchor = trail_anchor.advance(self, self._anchor)

    def _rollback_quietly(self) -> None:
        """Roll back after a failure; a rollback that fails too (the disk or server gone) leaves the first error."""
        try:
            self._conn.rollback()
        except DatabaseError as exc:
            log.warning("store %s: the rollback after a failed write failed too: %s", self.path, exc)

    @contextmanager
    def snapshot(self) -> Iterator[ClinicStore]:
        """Read from ONE committed state of the store (workstation.store.db.Db.snapshot): the plan's reads see no
        half of another room's save and cost no transaction each. No write may start inside (RuntimeError)."""
        with self._conn.snapshot():
            yield self

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
        created = now_text()
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
            raise UserError(f"The screening note must be text, not {quoted(notes)}.")
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
            raise UserError(f"This patient already has an open area labelled {quoted(label)} (on the "
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
            raise UserError(f"The patient's open area {quoted(label)} does not match the one given ({'; '.join(differ)}). "
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
                      "(?, 'closed_on', '', ?, ?, ?, ?)", (area_id, closed_on.isoformat(), reason.strip(), who, now_text()))
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
            raise UserError(f"This patient already has an open area labelled {quoted(after.label)}; choose another label.")
        at = now_text()
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

    def export_patient(self, pseudonym: str) -> dict[str, Any]:
        """Everything about a patient's treatment under the pseudonym only: no identifying field is included."""
        p = self.get_patient(pseudonym)
        return export_dict(p, self.screening(p.id), self.meds(p.id),
                           [(a, self.area_changes(a.id)) for a in self.areas(p.id)],
                           [(c, self.history(c.id)) for c in self.courses(p.id)])
