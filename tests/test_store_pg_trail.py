"""The audit trail on a PostgreSQL store (workstation.store.pg_trail): every write through the program is trailed
with who, why, when, old and new values and chained with the clinic's key, so `trail.verify` (the one chain check of
both engines) passes; a write around the program (no key), a disabled trigger, a change made with the triggers
dropped, and any change of an audit record are refused or found. Real server (tests/conftest.py pg_server)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date

import psycopg
import pytest
from sqlalchemy.engine import make_url

from workstation.keys import trail_key
from workstation.store import ClinicStore, Identity, trail


def _dsn(url: str) -> str:
    u = make_url(url)
    return f"dbname={u.database} user={u.username} host={u.query['host']}"


def _psql(url: str, sql: str, *, key: bytes | None = None) -> None:
    """One statement from another program: a plain psycopg connection as the superuser (with the trail key only when
    `key` is given)."""
    with psycopg.connect(_dsn(url), autocommit=True) as c:
        if key is not None:
            c.execute("SELECT set_config('cicatrix.trail_key', %s, false)", (key.hex(),))
        c.execute(sql)


def test_writes_are_trailed_with_who_why_and_values_and_the_chain_verifies(pg_server):
    url = pg_server.create_database("trail_writes")
    with ClinicStore.open(url, training=False) as s:
        pid = s.create_patient("P-0042", Identity("Smithson", "Alexandra")).id
        s.actor = "dr-a"
        s.add_med(pid, "XTRAC", 400.5, date(2026, 1, 2))
        with s.transaction("typo in the device model") as c:
            c.execute("UPDATE med_measurements SET device_model = 'XTRAC 2' WHERE patient_id = ?", (pid,))
        rows = trail.entries(s._conn, table="med_measurements")
        assert [(e.action, e.who, e.reason, e.row_id) for e in rows] == [
            ("create", "dr-a", "", 1), ("change", "dr-a", "typo in the device model", 1)]
        assert rows[1].old_json == ('{"id":1,"patient_id":1,"device_model":"XTRAC","med_mj_cm2":400.5,'
                                    '"measured_on":"2026-01-02"}')
        assert json.loads(rows[1].new_json)["device_model"] == "XTRAC 2"
        assert rows[0].at_utc.endswith("+00:00") and len(rows[0].at_utc) == len("2026-01-02T10:14:00.000000+00:00")
        meta = [json.loads(e.new_json) for e in trail.entries(s._conn, table="meta")]
        assert {"key": "role", "value": "clinic"} in meta  # the marker, written before the triggers: the baseline
        ids = [e.id for e in trail.entries(s._conn)]
        assert ids == list(range(1, len(ids) + 1))
        report = trail.verify(s._conn, trail_key())
        assert report.intact and report.rows == len(ids), report.problem
        assert not trail.verify(s._conn, b"another clinic's key" + bytes(12)).intact  # the key is what verifies


def test_a_rolled_back_write_leaves_no_gap_and_the_next_row_chains_on(pg_server):
    url = pg_server.create_database("trail_rollback")
    with ClinicStore.open(url, training=False) as s:
        with pytest.raises(RuntimeError), s.transaction() as c:
            c.execute("INSERT INTO patients (pseudonym, created_at) VALUES ('P-0001', '2026-01-01')")
            raise RuntimeError("changed my mind")
        s.create_patient("P-0002")
        assert trail.verify(s._conn, trail_key()).intact


def test_writes_around_the_program_are_refused_or_found(pg_server):
    url = pg_server.create_database("trail_around")
    with ClinicStore.open(url, training=False) as s:
        pid = s.create_patient("P-0042").id
        s.add_med(pid, "XTRAC", 400, date(2026, 1, 2))
    with pytest.raises(psycopg.Error, match="written only by the Cicatrix program"):
        _psql(url, "UPDATE patients SET pseudonym = 'P-9999'")  # no key: no untrailed write
    with pytest.raises(psycopg.Error, match="written only by the Cicatrix program"):
        _psql(url, "INSERT INTO audit_trail (action, table_name, old_json, new_json, reason, at_utc, who, prev_hash, "
                   f"hash) VALUES ('create', 'x', NULL, NULL, '', '', '', '{'0' * 64}', '{'0' * 64}')")
    for table in ("audit_trail", "area_changes", "plan_overrides"):
        for sql in (f"UPDATE {table} SET id = id", f"DELETE FROM {table}", f"TRUNCATE {table} CASCADE"):
            with pytest.raises(psycopg.Error, match="audit record"):
                _psql(url, sql, key=trail_key())
    with pytest.raises(psycopg.Error, match="one by one"):
        _psql(url, "TRUNCATE med_measurements", key=trail_key())

    with ClinicStore.open(url, training=False) as s:  # open while the others tamper
        assert trail.verify(s._conn, trail_key()).intact
        _psql(url, "ALTER TABLE med_measurements DISABLE TRIGGER trail_med_measurements")
        assert "trail_med_measurements was disabled" in trail.verify(s._conn, trail_key()).problem
        _psql(url, "UPDATE med_measurements SET med_mj_cm2 = 800; "
                   "ALTER TABLE med_measurements ENABLE TRIGGER trail_med_measurements", key=trail_key())
        assert trail.verify(s._conn, trail_key()).problem == \
            "med_measurements row 1 differs from the trail in med_mj_cm2: changed around the program"
        _psql(url, "UPDATE med_measurements SET med_mj_cm2 = 400", key=trail_key())  # back as the trail says
        _psql(url, "DROP TRIGGER trail_patients ON patients")
        assert "trail_patients was removed" in trail.verify(s._conn, trail_key()).problem
        _psql(url, "SET session_replication_role = replica; DELETE FROM med_measurements")
    with ClinicStore.open(url, training=False) as s:  # the owner's open makes the trigger again; the delete stays found
        assert "med_measurements row 1 is gone" in trail.verify(s._conn, trail_key()).problem


def test_a_table_a_later_revision_adds_is_trailed_at_the_next_open(pg_server):
    url = pg_server.create_database("trail_new_table")
    ClinicStore.open(url, training=False).close()
    _psql(url, "CREATE TABLE room_notes (id INTEGER PRIMARY KEY, note TEXT NOT NULL, weight DOUBLE PRECISION)")
    with ClinicStore.open(url, training=False) as s:
        with s.transaction("a note") as c:
            c.execute("INSERT INTO room_notes VALUES (1, 'lamp replaced', NULL)")
        [entry] = trail.entries(s._conn, table="room_notes")
        assert entry.new_json == '{"id":1,"note":"lamp replaced","weight":null}' and entry.reason == "a note"
        assert trail.verify(s._conn, trail_key()).intact


def test_trail_verify_command_on_a_postgresql_store(pg_server):
    url = pg_server.create_database("trail_cli")
    with ClinicStore.open(url, training=False) as s:
        s.create_patient("P-0042")
    done = subprocess.run([sys.executable, "main.py", "trail", "verify", "--store", url], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "audit trail intact" in done.stdout, done.stdout + done.stderr
    _psql(url, "SET session_replication_role = replica; UPDATE patients SET pseudonym = 'P-0043'")
    done = subprocess.run([sys.executable, "main.py", "trail", "verify", "--store", url], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and "patients row 1 differs from the trail in pseudonym" in done.stdout


def test_a_marker_changed_around_the_program_is_refused_at_open(pg_server):
    from workstation.errors import UserError

    url = pg_server.create_database("trail_marker")
    ClinicStore.open(url, training=False).close()
    _psql(url, "SET session_replication_role = replica; UPDATE meta SET value = 'training' WHERE key = 'role'")
    with pytest.raises(UserError, match="marker was changed around the program"):
        ClinicStore.open(url, training=True)


def test_the_trail_json_is_sqlites_text_for_text_integers_and_nulls(pg_server, tmp_path):
    """The same row trailed by both engines gives the same JSON text (key order, no spaces, null, string escapes),
    so a trail reads alike whichever engine wrote it; doubles may differ in form only (docs/records.md)."""
    tricky = 'é "quoted" back\\slash\nnew line\ttab \x01 ✓'
    texts = []
    for target in (tmp_path / "c.sqlite3", pg_server.create_database("trail_json")):
        with ClinicStore.open(target, training=False) as s:
            with s.transaction() as c:
                c.execute("INSERT INTO meta (key, value) VALUES ('note', ?)", (tricky,))
                c.execute("INSERT INTO patients (id, pseudonym, created_at) VALUES (7, 'P-0007', '2026-01-01')")
                c.execute("INSERT INTO areas (patient_id, label, body_region, lesion_type, size_cm2, skin_type, "
                          "scar_age_months) VALUES (7, 'a', 'face', 'hypopigmented_scar', 2.5, 'III', NULL)")
            texts.append([e.new_json for e in trail.entries(s._conn)[-3:]])
    assert texts[0] == texts[1]
    assert json.loads(texts[1][0])["value"] == tricky and '"scar_age_months":null' in texts[1][2]


def test_a_write_while_another_holds_the_store_is_a_sentence_after_the_busy_timeout(pg_server):
    from workstation.errors import UserError
    from workstation.store.pg_trail import TRAIL_LOCK

    url = pg_server.create_database("trail_held")
    with ClinicStore.open(url, training=False) as s:
        with psycopg.connect(_dsn(url), autocommit=True) as other:  # another program inside a long write
            other.execute("SELECT pg_advisory_lock(%s)", (TRAIL_LOCK,))
            with pytest.raises(UserError, match="in use by another program") as caught:
                s.create_patient("P-0042")
            assert "canceling statement" not in str(caught.value) and "timeout" not in str(caught.value)
        s.create_patient("P-0042")  # once it lets go
        assert trail.verify(s._conn, trail_key()).intact
