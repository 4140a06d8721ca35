"""The legacy schema versions of the clinic store (before Alembic), FROZEN at version 8: a schema change is now an
Alembic revision (workstation/store/alembic/versions/, docs/records.md "Changing the schema"). They still bring an
old SQLite store to version 8, which workstation.store.upgrade then stamps at Alembic revision 0001. Each migration
runs in one transaction together with its version bump, so a database is always at exactly one version; PRAGMA
user_version holds the version."""

from __future__ import annotations

import sqlite3

from workstation.store.trail import TRAIL_MIGRATION

MIGRATIONS: tuple[str, ...] = (
    # 1: patients under pseudonyms, identity apart, screening, areas, courses, sessions, responses, recordings.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE patients (
        id INTEGER PRIMARY KEY, pseudonym TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
    CREATE TABLE patient_identity (
        patient_id INTEGER PRIMARY KEY REFERENCES patients(id) ON DELETE CASCADE,
        family_name TEXT NOT NULL, given_name TEXT NOT NULL, birth_date TEXT, contact TEXT NOT NULL DEFAULT '');
    CREATE TABLE screening_answers (
        id INTEGER PRIMARY KEY, patient_id INTEGER NOT NULL REFERENCES patients(id),
        item_id TEXT NOT NULL, answer INTEGER NOT NULL CHECK (answer IN (0, 1)), answered_on TEXT NOT NULL,
        answered_by TEXT NOT NULL, notes TEXT NOT NULL DEFAULT '');
    CREATE TABLE areas (
        id INTEGER PRIMARY KEY, patient_id INTEGER NOT NULL REFERENCES patients(id), label TEXT NOT NULL,
        body_region TEXT NOT NULL, lesion_type TEXT NOT NULL, size_cm2 REAL NOT NULL CHECK (size_cm2 > 0),
        skin_type TEXT NOT NULL);
    CREATE TABLE courses (
        id INTEGER PRIMARY KEY, patient_id INTEGER NOT NULL REFERENCES patients(id), protocol_id TEXT NOT NULL,
        protocol_version INTEGER NOT NULL, planned_sessions INTEGER NOT NULL, interval_days INTEGER NOT NULL,
        started_on TEXT NOT NULL);
    CREATE TABLE course_areas (
        course_id INTEGER NOT NULL REFERENCES courses(id), area_id INTEGER NOT NULL REFERENCES areas(id),
        PRIMARY KEY (course_id, area_id));
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY, course_id INTEGER NOT NULL REFERENCES courses(id), session_date TEXT NOT NULL,
        plan_json TEXT);
    CREATE TABLE treatments (
        id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL REFERENCES sessions(id),
        area_id INTEGER NOT NULL REFERENCES areas(id), modality TEXT NOT NULL CHECK (modality IN ('light', 'needling')),
        dose_mj_cm2 REAL, depth_mm REAL, stroke_rate_hz REAL, passes INTEGER, UNIQUE (session_id, area_id, modality));
    CREATE TABLE responses (
        id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL REFERENCES sessions(id),
        area_id INTEGER NOT NULL REFERENCES areas(id),
        erythema_grade INTEGER CHECK (erythema_grade BETWEEN 0 AND 4), blistering INTEGER NOT NULL DEFAULT 0,
        pain_0_10 INTEGER CHECK (pain_0_10 BETWEEN 0 AND 10), repigmentation_band TEXT,
        notes TEXT NOT NULL DEFAULT '', UNIQUE (session_id, area_id));
    CREATE TABLE recordings (
        id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL UNIQUE REFERENCES sessions(id), path TEXT NOT NULL,
        sha256 TEXT NOT NULL CHECK (length(sha256) = 64));
    """,
    # 2: the MED is kept per patient and per device model (it does not carry across devices).
    """
    CREATE TABLE med_measurements (
        id INTEGER PRIMARY KEY, patient_id INTEGER NOT NULL REFERENCES patients(id), device_model TEXT NOT NULL,
        med_mj_cm2 REAL NOT NULL CHECK (med_mj_cm2 > 0), measured_on TEXT NOT NULL);
    ALTER TABLE sessions ADD COLUMN device_model TEXT;
    """,
    # 3: erythema lasting over 48 h counts as grade 2; clinician overrides of a plan are kept with their reason.
    """
    ALTER TABLE responses ADD COLUMN erythema_duration_h REAL;
    CREATE TABLE plan_overrides (
        id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL REFERENCES sessions(id),
        area_id INTEGER NOT NULL REFERENCES areas(id), field TEXT NOT NULL, proposed REAL, value REAL NOT NULL,
        reason TEXT NOT NULL CHECK (length(reason) > 0), who TEXT NOT NULL, at TEXT NOT NULL);
    """,
    # 4: an area's description can be corrected (e.g. reclassified PIH when it darkens during a light course); every
    # change keeps the old and new value, the reason, who and when.
    """
    CREATE TABLE area_changes (
        id INTEGER PRIMARY KEY, area_id INTEGER NOT NULL REFERENCES areas(id), field TEXT NOT NULL,
        old TEXT NOT NULL, new TEXT NOT NULL, reason TEXT NOT NULL CHECK (length(reason) > 0), who TEXT NOT NULL,
        at TEXT NOT NULL);
    """,
    # 5: records a regulator would accept: operator accounts (roles, a memory-hard password hash) and the
    # append-only, hash-chained audit trail (docs/records.md; the triggers are made by trail.install_triggers).
    """
    CREATE TABLE operators (
        id INTEGER PRIMARY KEY, account TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('clinician', 'trainer', 'engineer', 'administrator')),
        password_hash TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
        created_at TEXT NOT NULL, created_by TEXT NOT NULL);
    """ + TRAIL_MIGRATION,
    # issue 11: an area records the scar's age (months) and kind, and can be closed; a patient's open areas have
    # unique labels. Duplicate open labels from before are renamed "<label> #<id>", each rename kept in area_changes.
    """
    ALTER TABLE areas ADD COLUMN scar_age_months INTEGER CHECK (scar_age_months IS NULL OR scar_age_months >= 0);
    ALTER TABLE areas ADD COLUMN scar_kind TEXT;
    ALTER TABLE areas ADD COLUMN closed_on TEXT;
    INSERT INTO area_changes (area_id, field, old, new, reason, who, at)
        SELECT a.id, 'label', a.label, a.label || ' #' || a.id,
               'another open area of this patient had the same label (renamed by the schema update)', 'migration',
               strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now')
        FROM areas a WHERE EXISTS (SELECT 1 FROM areas b WHERE b.patient_id = a.patient_id AND b.label = a.label
                                   AND b.id < a.id);
    UPDATE areas SET label = label || ' #' || id WHERE EXISTS (
        SELECT 1 FROM areas b WHERE b.patient_id = areas.patient_id AND b.label = areas.label AND b.id < areas.id);
    CREATE UNIQUE INDEX areas_open_label ON areas (patient_id, label) WHERE closed_on IS NULL;
    """,
    # issue 10: dosimetry QA on record. Each light device (by serial number) with its last reported lamp hours and
    # calibration factor; its radiometer checks (reference meter, measured vs reported irradiance, factor, who); and
    # overrides of an overdue or mismatched calibration, each with its reason.
    """
    CREATE TABLE devices (
        serial_number TEXT PRIMARY KEY, kind TEXT NOT NULL, model TEXT NOT NULL, lamp_hours REAL,
        reported_factor REAL, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL);
    CREATE TABLE radiometer_checks (
        id INTEGER PRIMARY KEY, serial_number TEXT NOT NULL REFERENCES devices(serial_number),
        checked_on TEXT NOT NULL, reference_meter TEXT NOT NULL CHECK (length(reference_meter) > 0),
        measured_mw_cm2 REAL NOT NULL CHECK (measured_mw_cm2 > 0),
        reported_mw_cm2 REAL NOT NULL CHECK (reported_mw_cm2 > 0), factor REAL NOT NULL CHECK (factor > 0),
        who TEXT NOT NULL CHECK (length(who) > 0), at TEXT NOT NULL);
    CREATE TABLE calibration_overrides (
        id INTEGER PRIMARY KEY, serial_number TEXT NOT NULL REFERENCES devices(serial_number),
        reason TEXT NOT NULL CHECK (length(reason) > 0), who TEXT NOT NULL CHECK (length(who) > 0),
        on_date TEXT NOT NULL, at TEXT NOT NULL);
    """,
    # (issue 9) The session journal. A session row is written when treatment starts, with state 'in_progress', the
    # process that runs it (pid:start-ticks) and its recording's path; each step's treatment row is upserted with
    # the session's running total for that area and modality whenever a step ends, is interrupted or resumed. At
    # the end the state becomes completed, partial or aborted. On the next start an 'in_progress' session whose
    # process is gone is closed as 'crashed', its doses taken from its recording. Rows from before this migration
    # were written only at the end of a session: 'ended'. Responses gain swelling, itching and the date healing was
    # confirmed (which releases the area for light in the next plan).
    """
    ALTER TABLE sessions ADD COLUMN state TEXT NOT NULL DEFAULT 'ended'
        CHECK (state IN ('ended', 'in_progress', 'completed', 'partial', 'aborted', 'crashed'));
    ALTER TABLE sessions ADD COLUMN process TEXT;
    ALTER TABLE sessions ADD COLUMN started_at TEXT;
    ALTER TABLE sessions ADD COLUMN ended_at TEXT;
    ALTER TABLE sessions ADD COLUMN recording_path TEXT;
    ALTER TABLE sessions ADD COLUMN outcome_note TEXT NOT NULL DEFAULT '';
    ALTER TABLE responses ADD COLUMN swelling INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE responses ADD COLUMN itching INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE responses ADD COLUMN healed_on TEXT;
    """,
)
LEGACY_LATEST = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, *, upto: int = LEGACY_LATEST, role: str | None = None) -> int:
    """Apply the missing migrations up to `upto`, each in its own transaction. On a new database the role marker
    is written in the same transaction as migration 1. The connection must be in autocommit mode.

    The version is read again after the write lock is taken (BEGIN IMMEDIATE), so several processes opening the same
    new store at once each see the version the previous one committed and never apply a migration twice.

    Raises sqlite3.OperationalError when another program holds the write lock longer than the busy timeout."""
    while schema_version(conn) < upto:  # read without a lock first: an up-to-date store opens beside a writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(conn)
            if version >= upto:
                conn.execute("COMMIT")
                break
            for statement in _statements(MIGRATIONS[version]):
                conn.execute(statement)
            if version == 0 and role is not None:
                conn.execute("INSERT INTO meta (key, value) VALUES ('role', ?)", (role,))
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return schema_version(conn)


def _statements(script: str) -> list[str]:
    """Split a migration script into complete SQL statements (executescript would commit the open transaction)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError(f"incomplete SQL statement at the end of a migration: {current.strip()[:60]!r}")
    return statements
