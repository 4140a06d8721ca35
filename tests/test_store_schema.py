"""The schema once (workstation/store/schema.py) and its Alembic revisions: the head is the schema on SQLite and on
PostgreSQL; an SQLite store of the legacy migrations (v1, v8 with data in every table and a trail) reaches the head
without losing a value and with its trail chain whole; several processes upgrading one new PostgreSQL database at
once make one schema; a store of a newer revision is refused with a sentence."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from workstation.errors import UserError
from workstation.keys import trail_key
from workstation.store import LATEST_VERSION, MIGRATIONS, ClinicStore, Identity, migrate
from workstation.store import trail as trail_mod
from workstation.store.db import sqlite_db
from workstation.store.schema import metadata
from workstation.store.upgrade import BASE_REVISION, LEGACY_VERSION, current_revision, revisions, upgrade

REPO = Path(__file__).resolve().parents[1]


def _affinity(declared: str) -> str:
    """SQLite's type affinity of a declared type (https://sqlite.org/datatype3.html §3.1)."""
    t = declared.upper()
    if "INT" in t:
        return "INTEGER"
    if any(k in t for k in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if any(k in t for k in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def _shape(path: Path) -> dict:
    """Everything about an SQLite schema that matters to the store: columns (affinity, NOT NULL, default, key),
    foreign keys, unique and partial indexes, CHECK expressions; not the spelling of the DDL."""
    conn = sqlite3.connect(path)
    shape = {}
    for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                                  "AND name NOT IN ('alembic_version') ORDER BY name"):
        # A key column is NOT NULL either way (SQLAlchemy says so; an INTEGER key is the rowid, and a NULL TEXT key
        # that legacy SQLite DDL allowed was never written).
        cols = [(r[1], _affinity(r[2]), r[3] or r[5] > 0, r[4], r[5])
                for r in conn.execute(f"PRAGMA table_info({name})")]
        fks = sorted((r[2], r[3], r[4], r[6]) for r in conn.execute(f"PRAGMA foreign_key_list({name})"))
        indexes = sorted(
            (r[2], r[3], tuple(c[2] for c in conn.execute(f"PRAGMA index_info('{r[1]}')")), r[4])
            for r in conn.execute(f"PRAGMA index_list({name})"))
        checks = sorted(re.sub(r"\s+", " ", c) for c in re.findall(r"CHECK \(((?:[^()]|\([^()]*\))*)\)", sql))
        shape[name] = (sorted(cols), fks, indexes, checks)
    shape["partial"] = sorted(r[0] for r in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND "
                                                         "sql LIKE '%WHERE%'"))
    conn.close()
    return shape


def test_the_alembic_head_is_the_schema_module_on_sqlite(tmp_path):
    ClinicStore.open(tmp_path / "a.sqlite3", training=False).close()
    engine = create_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    metadata.create_all(engine)
    engine.dispose()
    assert _shape(tmp_path / "a.sqlite3") == _shape(tmp_path / "m.sqlite3")
    with create_engine(f"sqlite:///{tmp_path / 'a.sqlite3'}").connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert current_revision(conn) == revisions()[-1]
        assert conn.exec_driver_sql("PRAGMA user_version").scalar_one() == LATEST_VERSION


def test_a_legacy_v8_store_has_the_schema_of_revision_0001(tmp_path):
    legacy = sqlite3.connect(tmp_path / "legacy.sqlite3", isolation_level=None)
    migrate(legacy, upto=LEGACY_VERSION, role="clinic")
    legacy.close()
    ClinicStore.open(tmp_path / "new.sqlite3", training=False).close()
    assert revisions()[0] == BASE_REVISION and len(MIGRATIONS) == LEGACY_VERSION
    if len(revisions()) == 1:  # later revisions change the head; the legacy path then continues to it (below)
        assert _shape(tmp_path / "legacy.sqlite3") == _shape(tmp_path / "new.sqlite3")
    ClinicStore.open(tmp_path / "legacy.sqlite3", training=False).close()
    assert _shape(tmp_path / "legacy.sqlite3") == _shape(tmp_path / "new.sqlite3")


def test_the_alembic_head_is_the_schema_module_on_postgresql(pg_server):
    engine = create_engine(pg_server.create_database("schema_head"))
    with engine.connect() as conn:
        assert upgrade(conn, role="clinic", where="the test database") == LATEST_VERSION
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert conn.execute(text("SELECT value FROM meta WHERE key = 'role'")).scalar_one() == "clinic"
        checks = conn.execute(text("SELECT count(*) FROM pg_constraint WHERE contype = 'c' AND "
                                   "connamespace = 'public'::regnamespace")).scalar_one()
        assert checks == sum(len([c for c in t.constraints if c.__class__.__name__ == "CheckConstraint"])
                             + sum(len([c for c in col.constraints if c.__class__.__name__ == "CheckConstraint"])
                                   for col in t.columns) for t in metadata.tables.values())
        partial = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'areas_open_label'")
                               ).scalar_one()
        assert "UNIQUE" in partial and "WHERE (closed_on IS NULL)" in partial
        # an upgrade at the head changes nothing, and a second marker is never written
        assert upgrade(conn, role="training", where="the test database") == LATEST_VERSION
        assert conn.execute(text("SELECT count(*) FROM meta")).scalar_one() == 1
    engine.dispose()


def test_postgresql_refuses_a_database_of_another_program_and_a_newer_revision(pg_server):
    engine = create_engine(pg_server.create_database("schema_refuse"))
    with engine.connect() as conn:
        conn.execute(text("CREATE TABLE x (a integer)"))
        conn.commit()
        with pytest.raises(UserError, match="not a Cicatrix store"):
            upgrade(conn, role="clinic", where="the test database")
        conn.rollback()
        conn.execute(text("DROP TABLE x"))
        conn.commit()
        upgrade(conn, role="clinic", where="the test database")
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
        conn.commit()
        with pytest.raises(UserError, match="newer than this program"):
            upgrade(conn, role="clinic", where="the test database")
    engine.dispose()


def test_sqlite_refuses_a_newer_revision(tmp_path):
    path = tmp_path / "c.sqlite3"
    ClinicStore.open(path, training=False).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE alembic_version SET version_num = 'f00d'")
    conn.close()
    with pytest.raises(UserError, match="newer than this program knows"):
        ClinicStore.open(path, training=False)


UPGRADE_CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {repo!r})
    from sqlalchemy import create_engine
    from workstation.store.upgrade import upgrade
    url, start = sys.argv[1], float(sys.argv[2])
    engine = create_engine(url)
    with engine.connect() as conn:
        while time.time() < start:
            time.sleep(0.0005)
        print(upgrade(conn, role="clinic", where="the test database"))
    """
)


def test_processes_upgrading_one_new_postgresql_database_at_once_make_one_schema(pg_server):
    url = pg_server.create_database("schema_race")
    start = time.time() + 2.0
    procs = [subprocess.Popen([sys.executable, "-c", UPGRADE_CHILD.format(repo=str(REPO)), url, repr(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.strip() == str(LATEST_VERSION)
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM meta WHERE key = 'role'")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    engine.dispose()


# --- legacy stores with data in every table ----------------------------------------------------------------------

V1_ROWS = """
    INSERT INTO meta VALUES ('note', 'kept');
    INSERT INTO patients VALUES (1, 'CX-OLD1', '2026-01-01T00:00:00+00:00');
    INSERT INTO patient_identity VALUES (1, 'Smithson', 'Alexandra', '1990-05-06', '07700 900123');
    INSERT INTO screening_answers VALUES (1, 1, 'photosensitising-drugs', 0, '2026-01-01', 'dr-a', 'none taken');
    INSERT INTO areas (id, patient_id, label, body_region, lesion_type, size_cm2, skin_type)
        VALUES (1, 1, 'left cheek', 'face', 'hypopigmented_scar', 2.5, 'III');
    INSERT INTO courses VALUES (1, 1, 'hypopigmented-scar-light', 1, 10, 7, '2026-01-01');
    INSERT INTO course_areas VALUES (1, 1);
    INSERT INTO sessions (id, course_id, session_date, plan_json) VALUES (1, 1, '2026-01-01', '{"areas": [1]}');
    INSERT INTO treatments VALUES (1, 1, 1, 'light', 260.5, NULL, NULL, NULL);
    INSERT INTO treatments VALUES (2, 1, 1, 'needling', NULL, 0.75, 120.0, 3);
    INSERT INTO responses (id, session_id, area_id, erythema_grade, blistering, pain_0_10, repigmentation_band, notes)
        VALUES (1, 1, 1, 1, 0, 3, '25-50', 'mild');
    INSERT INTO recordings VALUES (1, 1, '/rec/s1.h5', '""" + "ab" * 32 + """');
"""

V8_ROWS = """
    INSERT INTO med_measurements VALUES (1, 1, 'XTRAC', 400.0, '2026-01-02');
    UPDATE sessions SET device_model = 'XTRAC', state = 'completed', process = '123:456',
        started_at = '2026-01-01T10:00:00+00:00', ended_at = '2026-01-01T10:20:00+00:00',
        recording_path = '/rec/s1.h5', outcome_note = 'all steps' WHERE id = 1;
    UPDATE responses SET erythema_duration_h = 50.5, swelling = 1, itching = 1, healed_on = '2026-01-05' WHERE id = 1;
    INSERT INTO plan_overrides VALUES (1, 1, 1, 'dose_mj_cm2', 280.0, 260.5, 'erythema last time', 'dr-a',
        '2026-01-01T10:00:00+00:00');
    INSERT INTO area_changes VALUES (1, 1, 'lesion_type', 'pih', 'hypopigmented_scar', 'reclassified', 'dr-a',
        '2026-01-01T10:00:00+00:00');
    INSERT INTO operators VALUES (1, 'dr-a', 'Dr A', 'clinician', '$argon2id$fake', 1, '2026-01-01', 'admin');
    UPDATE areas SET scar_age_months = 14, scar_kind = 'atrophic', closed_on = NULL WHERE id = 1;
    INSERT INTO devices VALUES ('SN-1', 'light', 'XTRAC', 1200.5, 1.02, '2026-01-01', '2026-01-02');
    INSERT INTO radiometer_checks VALUES (1, 'SN-1', '2026-01-02', 'meter-7', 50.5, 50.0, 1.01, 'eng-b',
        '2026-01-02T09:00:00+00:00');
    INSERT INTO calibration_overrides VALUES (1, 'SN-1', 'meter in repair', 'dr-a', '2026-01-03',
        '2026-01-03T09:00:00+00:00');
"""


def _dump(path: Path) -> dict[str, list[dict]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN "
                                         "('alembic_version') ORDER BY name")]
    out = {t: [dict(r) for r in conn.execute(f"SELECT rowid AS _rowid, * FROM {t} ORDER BY rowid")] for t in tables}
    conn.close()
    return out


def _assert_kept(before: dict[str, list[dict]], after: dict[str, list[dict]], store: ClinicStore) -> None:
    """Every row of `before` is in `after` with the same values; only meta (the trail key's fingerprint) and the
    trail (its baseline) may have more rows. Identity typed before it was encrypted at rest is encrypted on open:
    it reads back the same through the store."""
    assert store.identity(1) == Identity("Smithson", "Alexandra", date(1990, 5, 6), "07700 900123")
    assert all(after["patient_identity"][0][c].startswith("aesgcm1:") for c in ("family_name", "contact"))
    for table, rows in before.items():
        if table == "patient_identity":
            continue
        if table not in ("meta", "audit_trail"):
            assert len(after[table]) == len(rows), table
        by_rowid = {r["_rowid"]: r for r in after[table]}
        for old in rows:
            assert {k: by_rowid[old["_rowid"]][k] for k in old} == old, table


def test_a_v1_store_reaches_the_head_with_every_value(tmp_path):
    path = tmp_path / "v1.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, upto=1, role="clinic")
    conn.executescript(V1_ROWS)
    conn.close()
    before = _dump(path)
    assert all(before[t] for t in before), [t for t in before if not before[t]]  # data in every table
    with ClinicStore.open(path, training=False) as s:
        assert s.schema_version == LATEST_VERSION
        assert s.history(1)[0].treatments[0].dose_mj_cm2 == 260.5
        after = _dump(path)
        _assert_kept(before, after, s)
    assert after["sessions"][0]["state"] == "ended" and after["responses"][0]["swelling"] == 0
    raw = sqlite3.connect(path)
    trail_mod.register_functions(raw, trail_mod.default_actor, str, trail_key())
    report = trail_mod.verify(sqlite_db(raw), trail_key())
    assert report.intact, report.problem
    assert report.rows == sum(len(rows) for t, rows in after.items() if t != "audit_trail")  # the baseline
    raw.close()


def test_a_v8_store_of_the_old_program_reaches_the_head_with_every_value_and_its_trail(tmp_path):
    path = tmp_path / "v8.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, upto=LEGACY_VERSION, role="clinic")
    trail_mod.register_functions(conn, lambda: "dr-a", lambda: "a reason", trail_key())
    trail_mod.install_triggers(sqlite_db(conn))  # as the old program did at every open (same triggers)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.executescript(V1_ROWS + V8_ROWS)
    conn.execute("DELETE FROM treatments WHERE id = 2")
    # a second light session on the same area and day, recorded before the rule (revision 0002): kept, outside it
    conn.execute("INSERT INTO sessions (id, course_id, session_date, state) VALUES (2, 1, '2026-01-01', 'completed')")
    conn.execute("INSERT INTO treatments VALUES (3, 2, 1, 'light', 100.0, NULL, NULL, NULL)")
    conn.close()
    before = _dump(path)
    assert all(before[t] for t in before), [t for t in before if not before[t]]
    trail_rows = len(before["audit_trail"])
    assert trail_rows > 20
    with ClinicStore.open(path, training=False) as s:
        assert s.schema_version == LATEST_VERSION
        assert s.area(1).scar_kind == "atrophic"
        after = _dump(path)
        _assert_kept(before, after, s)
    # what the later revisions add: light rows carry their session's date (the earlier of two on one day only), the
    # course's version starts at 0, no lease is held, no recording is on the share yet
    assert {r["id"]: r["light_on"] for r in after["treatments"]} == {1: "2026-01-01", 3: None}
    assert after["courses"][0]["version"] == 0 and after["course_leases"] == []
    assert {r["room"] for r in after["sessions"]} == {None}
    assert [(r["copy_from"], r["shared_path"], r["shared_at"]) for r in after["recordings"]] == [(None, None, None)]
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT version_num FROM alembic_version").fetchone()[0] == revisions()[-1]
    trail_mod.register_functions(raw, trail_mod.default_actor, str, trail_key())
    with pytest.raises(sqlite3.IntegrityError, match="carries its session date"):  # the triggers of 0002 are there
        raw.execute("INSERT INTO treatments (session_id, area_id, modality, dose_mj_cm2) VALUES (2, 1, 'light', 1)")
    raw.rollback()
    report = trail_mod.verify(sqlite_db(raw), trail_key())
    assert report.intact, report.problem
    assert report.rows >= trail_rows
    raw.close()


def test_the_legacy_migrations_are_frozen():
    """A schema change is an Alembic revision now: a ninth legacy migration would never run."""
    assert len(MIGRATIONS) == LEGACY_VERSION
    assert LATEST_VERSION == LEGACY_VERSION + len(revisions()) - 1


def test_processes_opening_one_legacy_store_at_once_upgrade_it_once(tmp_path):
    from tests.test_store_concurrency import _run_together

    body = """
    s = ClinicStore.open(path, training=False)
    s.close()
    """
    for trial in range(3):
        path = tmp_path / f"old-{trial}.sqlite3"
        conn = sqlite3.connect(path, isolation_level=None)
        migrate(conn, upto=3, role="clinic")
        conn.executescript(V1_ROWS)
        conn.close()
        for rc, out, err in _run_together(body, path, [[]] * 3):
            assert rc == 0, err
            assert out.strip() == "OK", (out, err)
        raw = sqlite3.connect(path)
        assert raw.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1
        assert raw.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        trail_mod.register_functions(raw, trail_mod.default_actor, str, trail_key())
        report = trail_mod.verify(sqlite_db(raw), trail_key())
        assert report.intact, report.problem
        raw.close()
