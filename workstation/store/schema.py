"""The clinic store's schema, once, in SQLAlchemy Core: every table, constraint, CHECK and index, for SQLite and
PostgreSQL alike. This is the schema at the Alembic head (workstation/store/alembic/versions/); a test compares the
two, so a change here goes with a new revision there (docs/records.md, "Changing the schema").

Types are chosen so that a store created here is the store the legacy migrations made (v8): INTEGER primary keys
stay SQLite rowid aliases, REAL becomes DOUBLE (a REAL affinity on SQLite, 8-byte on PostgreSQL), dates and times
are ISO 8601 TEXT as before, and flags are INTEGER 0/1 with their CHECK."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()


def _id() -> Column:
    return Column("id", Integer, primary_key=True)


def _text(name: str, *, null: bool = False, default: str | None = None, check: str | None = None) -> Column:
    args = (CheckConstraint(check),) if check else ()
    return Column(name, Text, *args, nullable=null,
                  server_default=None if default is None else text(f"'{default}'"))


def _ref(name: str, target: str, *, null: bool = False, **kw) -> Column:
    kind = Text if target == "devices.serial_number" else Integer
    return Column(name, kind, ForeignKey(target, **kw), nullable=null)


meta = Table("meta", metadata, Column("key", Text, primary_key=True), _text("value"))

patients = Table("patients", metadata, _id(), Column("pseudonym", Text, nullable=False, unique=True),
                 _text("created_at"))

patient_identity = Table(
    "patient_identity", metadata,
    Column("patient_id", Integer, ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True,
           autoincrement=False),
    _text("family_name"), _text("given_name"), _text("birth_date", null=True), _text("contact", default=""))

screening_answers = Table(
    "screening_answers", metadata, _id(), _ref("patient_id", "patients.id"), _text("item_id"),
    Column("answer", Integer, CheckConstraint("answer IN (0, 1)"), nullable=False), _text("answered_on"),
    _text("answered_by"), _text("notes", default=""))

areas = Table(
    "areas", metadata, _id(), _ref("patient_id", "patients.id"), _text("label"), _text("body_region"),
    _text("lesion_type"), Column("size_cm2", Double, CheckConstraint("size_cm2 > 0"), nullable=False),
    _text("skin_type"),
    Column("scar_age_months", Integer, CheckConstraint("scar_age_months IS NULL OR scar_age_months >= 0")),
    _text("scar_kind", null=True), _text("closed_on", null=True))
Index("areas_open_label", areas.c.patient_id, areas.c.label, unique=True,
      sqlite_where=areas.c.closed_on.is_(None), postgresql_where=areas.c.closed_on.is_(None))

courses = Table(
    "courses", metadata, _id(), _ref("patient_id", "patients.id"), _text("protocol_id"),
    Column("protocol_version", Integer, nullable=False), Column("planned_sessions", Integer, nullable=False),
    Column("interval_days", Integer, nullable=False), _text("started_on"),
    Column("version", Integer, nullable=False, server_default=text("0")))  # (0002) bumped by each saved start

course_areas = Table(
    "course_areas", metadata, _ref("course_id", "courses.id"), _ref("area_id", "areas.id"),
    PrimaryKeyConstraint("course_id", "area_id"))

sessions = Table(
    "sessions", metadata, _id(), _ref("course_id", "courses.id"), _text("session_date"),
    _text("plan_json", null=True), _text("device_model", null=True),
    _text("state", default="ended",
          check="state IN ('ended', 'in_progress', 'completed', 'partial', 'aborted', 'crashed')"),
    _text("process", null=True), _text("started_at", null=True), _text("ended_at", null=True),
    _text("recording_path", null=True), _text("outcome_note", default=""),
    _text("room", null=True),  # (0002) the room whose lease the session started under
    _text("start_key", null=True))  # (0007) the start's idempotency key: a start sent twice is one session

treatments = Table(
    "treatments", metadata, _id(), _ref("session_id", "sessions.id"), _ref("area_id", "areas.id"),
    _text("modality", check="modality IN ('light', 'needling')"), Column("dose_mj_cm2", Double),
    Column("depth_mm", Double), Column("stroke_rate_hz", Double), Column("passes", Integer),
    _text("light_on", null=True, check="light_on IS NULL OR modality = 'light'"),  # (0002) the session's date
    UniqueConstraint("session_id", "area_id", "modality"))
# (0002) One light session per area per day; the revision's triggers refuse a light row whose light_on is not its
# session's date (workstation/store/leases.py).
Index("treatments_one_light_session_per_area_day", treatments.c.area_id, treatments.c.light_on, unique=True)

responses = Table(
    "responses", metadata, _id(), _ref("session_id", "sessions.id"), _ref("area_id", "areas.id"),
    Column("erythema_grade", Integer, CheckConstraint("erythema_grade BETWEEN 0 AND 4")),
    Column("blistering", Integer, nullable=False, server_default=text("0")),
    Column("pain_0_10", Integer, CheckConstraint("pain_0_10 BETWEEN 0 AND 10")),
    _text("repigmentation_band", null=True), _text("notes", default=""), Column("erythema_duration_h", Double),
    Column("swelling", Integer, nullable=False, server_default=text("0")),
    Column("itching", Integer, nullable=False, server_default=text("0")), _text("healed_on", null=True),
    UniqueConstraint("session_id", "area_id"))

recordings = Table(
    "recordings", metadata, _id(), Column("session_id", Integer, ForeignKey("sessions.id"), nullable=False,
                                          unique=True),
    _text("path"), _text("sha256", check="length(sha256) = 64"),
    # (0003) the clinic's recordings share: the workstation that copies it, where and when its copy was verified
    _text("copy_from", null=True), _text("shared_path", null=True), _text("shared_at", null=True),
    _text("held_by", null=True))  # (0005) whose recordings root a relative path is relative to (NULL: meta's)

# (0005) Each workstation's own recordings folder, keyed by its host name (workstation/store/recording_index.py).
recordings_roots = Table(
    "recordings_roots", metadata,
    Column("workstation", Text, CheckConstraint("length(workstation) > 0"), primary_key=True),
    _text("root", check="length(root) > 0"), _text("set_at"))

med_measurements = Table(
    "med_measurements", metadata, _id(), _ref("patient_id", "patients.id"), _text("device_model"),
    Column("med_mj_cm2", Double, CheckConstraint("med_mj_cm2 > 0"), nullable=False), _text("measured_on"))

plan_overrides = Table(
    "plan_overrides", metadata, _id(), _ref("session_id", "sessions.id"), _ref("area_id", "areas.id"),
    _text("field"), Column("proposed", Double), Column("value", Double, nullable=False),
    _text("reason", check="length(reason) > 0"), _text("who"), _text("at"))

area_changes = Table(
    "area_changes", metadata, _id(), _ref("area_id", "areas.id"), _text("field"), _text("old"), _text("new"),
    _text("reason", check="length(reason) > 0"), _text("who"), _text("at"))

operators = Table(
    "operators", metadata, _id(), Column("account", Text, nullable=False, unique=True), _text("display_name"),
    _text("role", check="role IN ('clinician', 'trainer', 'engineer', 'administrator')"), _text("password_hash"),
    Column("active", Integer, CheckConstraint("active IN (0, 1)"), nullable=False, server_default=text("1")),
    _text("created_at"), _text("created_by"))

# The append-only, hash-chained audit trail (docs/records.md); its triggers are made from the schema at open.
audit_trail = Table(
    "audit_trail", metadata, _id(), _text("at_utc"), _text("who"),
    _text("action", check="action IN ('create', 'change', 'delete')"), _text("table_name"),
    Column("row_id", Integer), _text("old_json", null=True), _text("new_json", null=True),
    _text("reason", default=""), _text("prev_hash", check="length(prev_hash) = 64"),
    _text("hash", check="length(hash) = 64"))

devices = Table(
    "devices", metadata, Column("serial_number", Text, primary_key=True), _text("kind"), _text("model"),
    Column("lamp_hours", Double), Column("reported_factor", Double), _text("first_seen"), _text("last_seen"))

radiometer_checks = Table(
    "radiometer_checks", metadata, _id(), _ref("serial_number", "devices.serial_number"), _text("checked_on"),
    _text("reference_meter", check="length(reference_meter) > 0"),
    Column("measured_mw_cm2", Double, CheckConstraint("measured_mw_cm2 > 0"), nullable=False),
    Column("reported_mw_cm2", Double, CheckConstraint("reported_mw_cm2 > 0"), nullable=False),
    Column("factor", Double, CheckConstraint("factor > 0"), nullable=False),
    _text("who", check="length(who) > 0"), _text("at"))

# (0002) The course's lease: one row per course, the start that holds it (workstation/store/leases.py).
course_leases = Table(
    "course_leases", metadata, _id(), Column("course_id", Integer, ForeignKey("courses.id"), nullable=False,
                                             unique=True),
    _text("holder"), _text("room", check="length(room) > 0"), _text("host"), _text("account"), _text("process"),
    _text("started_at"), _text("renewed_at"), _text("released_at", null=True))

calibration_overrides = Table(
    "calibration_overrides", metadata, _id(), _ref("serial_number", "devices.serial_number"),
    _text("reason", check="length(reason) > 0"), _text("who", check="length(who) > 0"), _text("on_date"),
    _text("at"))

# (0005) Reads by course and by patient (a visit's plan), and the trail's last record of one row (opening a store).
Index("sessions_by_course", sessions.c.course_id, sessions.c.session_date)
Index("courses_by_patient", courses.c.patient_id)
Index("areas_by_patient", areas.c.patient_id)
Index("screening_answers_by_patient", screening_answers.c.patient_id)
Index("med_measurements_by_patient", med_measurements.c.patient_id)
Index("audit_trail_by_row", audit_trail.c.table_name, audit_trail.c.row_id)
Index("sessions_start_key", sessions.c.start_key, unique=True)  # (0007)
