"""The store selected by a URL: `ClinicStore.open` takes a path or a URL string; the settings key store.url and
`--store URL|FILE`; a PostgreSQL store opens, reads what is in it and writes; every problem opening a server store is a sentence, never psycopg's text."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from workstation.cli_settings import add_setting_options, settings_from_args
from workstation.errors import UserError
from workstation.keys import trail_key
from workstation.settings import load_settings
from workstation.store import LATEST_VERSION, ClinicStore
from workstation.store.connection import store_url
from workstation.store.db import DatabaseError, Db


def test_a_sqlite_url_is_the_same_store_as_its_path(tmp_path):
    path = tmp_path / "c.sqlite3"
    with ClinicStore.open(f"sqlite:///{path}", training=False) as s:
        assert s.path == path
        pid = s.create_patient("P-0042").id
    with ClinicStore.open(path, training=False) as s:
        assert s.find_patient("P-0042").id == pid


@pytest.mark.parametrize(("url", "words"), [
    ("mysql://u@h/db", "SQLite or PostgreSQL"),
    ("sqlite://", "names its file"),
    ("postgresql+psycopg://u:secret@h:notaport/db", "store URL given is not valid"),
])
def test_a_wrong_url_is_a_sentence(url, words):
    with pytest.raises(UserError, match=words) as caught:
        store_url(url)
    assert "secret" not in str(caught.value)


def test_the_driver_style_is_converted_at_one_place(pg_server):
    engine = create_engine(pg_server.create_database("convert"))
    with engine.connect() as conn:
        db = Db(conn)
        row = db.execute("SELECT '?', ?, 'a%b', ? || '%'", ("x", "y")).fetchone()
        assert tuple(row) == ("?", "x", "a%b", "y%")
        assert db.execute("SELECT 1 AS one").fetchone()["one"] == 1
        assert not conn.in_transaction()  # a statement outside a transaction is committed at once
    engine.dispose()


def _fill(url: str) -> None:
    """Clinical rows written into the server store directly, by SQL with the clinic's trail key (trailed)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("SELECT set_config('cicatrix.trail_key', :k, true)"), {"k": trail_key().hex()})
        conn.execute(text("""
            INSERT INTO patients (id, pseudonym, created_at) VALUES (1, 'P-0042', '2026-01-01T00:00:00+00:00');
            INSERT INTO areas (id, patient_id, label, body_region, lesion_type, size_cm2, skin_type)
                VALUES (1, 1, 'left cheek', 'face', 'hypopigmented_scar', 2.5, 'III');
            INSERT INTO courses VALUES (1, 1, 'hypopigmented-scar-light', 1, 10, 7, '2026-01-01');
            INSERT INTO course_areas VALUES (1, 1);
            INSERT INTO sessions (id, course_id, session_date, state) VALUES (1, 1, '2026-01-01', 'completed');
            INSERT INTO treatments (session_id, area_id, modality, dose_mj_cm2, light_on)
                VALUES (1, 1, 'light', 260.5, '2026-01-01');
            INSERT INTO responses (session_id, area_id, erythema_grade) VALUES (1, 1, 1);
            SELECT setval(pg_get_serial_sequence('patients', 'id'), 1);
        """))
    engine.dispose()


def test_a_postgresql_store_opens_by_url_reads_and_writes(pg_server):
    url = pg_server.create_database("store_url")
    with ClinicStore.open(url, training=False) as s:
        assert s.schema_version == LATEST_VERSION
        assert "@" in str(s.path) and "store_url" in str(s.path)
    _fill(url)
    with ClinicStore.open(url, training=False) as s:
        assert s.find_patient("P-0042").id == 1
        assert [a.label for a in s.areas(1)] == ["left cheek"]
        hist = s.history(1)
        assert hist[0].treatments[0].dose_mj_cm2 == 260.5 and hist[0].responses[0].erythema_grade == 1
        assert s.course(1).area_ids == (1,)
        s.create_patient("P-0043")  # writes are trailed on the server (tests/test_store_pg_trail.py)
        s.add_med(1, "XTRAC", 400, date(2026, 1, 2))
        assert s.find_patient("P-0043") is not None and len(s.meds(1)) == 1
    with pytest.raises(UserError, match="marked as a clinic database"):
        ClinicStore.open(url, training=True)


def test_server_problems_are_sentences(pg_server):
    pg_server.create_database("present")
    socket = pg_server.socket_dir
    cases = [
        (pg_server.url("absent"), "does not exist on the server"),
        (f"postgresql+psycopg://nobody@/present?host={socket}", "refused the account"),
        ("postgresql+psycopg://postgres@/present?host=/nonexistent-socket-dir", "cannot be reached"),
    ]
    for url, words in cases:
        with pytest.raises(UserError, match=words) as caught:
            ClinicStore.open(url, training=False)
        assert "psycopg" not in str(caught.value).replace("postgresql+psycopg://", "")


def test_store_url_in_the_settings_and_store_option(tmp_path):
    file = tmp_path / "cicatrix.toml"
    file.write_text('[store]\nurl = "postgresql+psycopg://cicatrix@db.clinic.example/cicatrix"\n')
    settings = load_settings(file)
    assert settings.store_target() == "postgresql+psycopg://cicatrix@db.clinic.example/cicatrix"
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings", type=Path)
    add_setting_options(parser, ("paths.store",))
    given_file = settings_from_args(parser.parse_args(["--settings", str(file), "--store", str(tmp_path / "x.db")]))
    assert given_file.store_target() == tmp_path / "x.db"  # the command line wins over the file's URL
    given_url = settings_from_args(parser.parse_args(["--store", "postgresql+psycopg://a@b/c"]))
    assert given_url.store_target() == "postgresql+psycopg://a@b/c"
    assert given_url.setting("store.url").source == "command line --store"
    default = load_settings(None)
    assert default["store.url"] is None and default.store_target() == default["paths.store"]  # the SQLite file
    file.write_text('[store]\nurl = "clinic.sqlite3"\n')
    with pytest.raises(UserError, match=r"store\.url: is 'clinic\.sqlite3'; give a URL"):
        load_settings(file)
    file.write_text('[store]\nurl = "oracle://x@y/z"\n')
    with pytest.raises(UserError, match="SQLite or PostgreSQL"):
        load_settings(file)


def test_a_failed_statement_outside_a_transaction_does_not_block_the_next(pg_server):
    url = pg_server.create_database("failed_statement")
    with ClinicStore.open(url, training=False) as s:
        with pytest.raises(DatabaseError):
            s._conn.execute("SELECT no_such_column FROM patients")
        assert s.find_patient("P-0042") is None  # not "current transaction is aborted"
        s.create_patient("P-0042")
