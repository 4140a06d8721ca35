"""The owner / application split on a PostgreSQL store (workstation.store.roles): connected as cicatrix_app, the
program works as usual and its trail verifies, while the trail cannot be changed, emptied or unhooked by that
account, whatever SQL it sends. Real server (tests/conftest.py pg_server)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import psycopg
import pytest
from sqlalchemy.engine import make_url

from workstation.keys import trail_key
from workstation.store import ClinicStore, trail
from workstation.store.roles import APP


def _as(url: str, sql: str) -> None:
    u = make_url(url)
    with psycopg.connect(f"dbname={u.database} user={u.username} host={u.query['host']}", autocommit=True) as c:
        c.execute("SELECT set_config('cicatrix.trail_key', %s, false)", (trail_key().hex(),))
        c.execute(sql)


def test_the_application_role_works_and_may_only_add_to_the_trail(pg_server):
    admin = pg_server.create_database("roles")
    done = subprocess.run([sys.executable, "main.py", "store", "setup-roles", "--url", admin], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "cicatrix_app may read and write" in done.stdout, done.stdout + done.stderr
    app = pg_server.url("roles", user=APP)
    with ClinicStore.open(app, training=False) as s:
        pid = s.create_patient("P-0042").id
        s.add_med(pid, "XTRAC", 400, date(2026, 1, 2))
        with s.transaction("wrong model") as c:
            c.execute("UPDATE med_measurements SET device_model = 'XTRAC 2'")
        assert trail.entries(s._conn, table="med_measurements")[-1].reason == "wrong model"
        assert trail.verify(s._conn, trail_key()).intact
    refused = ["UPDATE audit_trail SET who = 'nobody'", "DELETE FROM audit_trail", "TRUNCATE audit_trail",
               "DROP TRIGGER trail_patients ON patients", "ALTER TABLE patients DISABLE TRIGGER trail_patients",
               "DROP TABLE audit_trail", "CREATE OR REPLACE FUNCTION cx_trail_patients() RETURNS trigger "
               "LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$", "SET session_replication_role = replica",
               "CREATE TABLE untrailed (id integer)", "UPDATE area_changes SET reason = 'x'"]
    for sql in refused:
        with pytest.raises(psycopg.Error, match="permission denied|must be owner|audit record"):
            _as(app, sql)
    # An insert into the trail by that account is numbered, stamped and chained by the trail itself: no forged link.
    _as(app, "INSERT INTO audit_trail (action, table_name, row_id, new_json, at_utc, who, prev_hash, hash) VALUES "
             f"('create', 'note', NULL, '{{}}', 'yesterday', 'someone', '{'0' * 64}', '{'f' * 64}')")
    with ClinicStore.open(app, training=False) as s:
        last = trail.entries(s._conn)[-1]
        assert last.table_name == "note" and last.at_utc != "yesterday"
        assert trail.verify(s._conn, trail_key()).intact
    with ClinicStore.open(admin, training=False) as s:  # the owner's side: still the same store, nothing repaired
        assert trail.verify(s._conn, trail_key()).intact


def test_the_application_role_cannot_remake_stale_triggers_and_says_who_can(pg_server):
    from workstation.errors import UserError
    from workstation.store.roles import apply_roles

    admin = pg_server.create_database("roles_stale")
    with ClinicStore.open(admin, training=False) as s:
        apply_roles(s._conn)  # then a later revision, run by the owner, adds a table:
    _as(admin, "SET ROLE cicatrix_owner; CREATE TABLE room_notes (id INTEGER PRIMARY KEY, note TEXT NOT NULL)")
    with pytest.raises(UserError, match="opens the store once as its owner") as caught:
        ClinicStore.open(pg_server.url("roles_stale", user=APP), training=False)
    assert "psycopg" not in str(caught.value)
    with ClinicStore.open(admin, training=False) as s:  # the owner's side remakes them; then the workstations work
        assert "trail_room_notes" in str(s._conn.execute("SELECT tgname FROM pg_trigger").fetchall())
    with ClinicStore.open(pg_server.url("roles_stale", user=APP), training=False) as s:
        s.create_patient("P-0042")
        assert trail.verify(s._conn, trail_key()).intact


def test_a_temporary_table_cannot_take_the_trail_s_place(pg_server):
    """From the fresh tester of issue 17: as cicatrix_app, a temporary `audit_trail` took the trail's rows (the
    SECURITY DEFINER functions searched the session's temporary schema first) and a dose changed with no trail row.
    The functions' search path lists pg_temp last: the real trail gets the row, and the chain verifies."""
    admin = pg_server.create_database("roles_temp")
    with ClinicStore.open(admin, training=False) as s:
        from workstation.store.roles import apply_roles

        apply_roles(s._conn)
        pid = s.create_patient("P-0042").id
        s.add_med(pid, "XTRAC", 400, date(2026, 1, 2))
        before = len(trail.entries(s._conn, table="med_measurements"))
    app = pg_server.url("roles_temp", user=APP)
    _as(app, "CREATE TEMP TABLE audit_trail (id serial, at_utc text, who text, action text, table_name text, "
             "row_id int, old_json text, new_json text, reason text, prev_hash text, hash text); "
             "UPDATE med_measurements SET med_mj_cm2 = 999")
    with ClinicStore.open(admin, training=False) as s:
        rows = trail.entries(s._conn, table="med_measurements")
        assert len(rows) == before + 1 and rows[-1].action == "change" and "999" in rows[-1].new_json
        assert trail.verify(s._conn, trail_key()).intact


def test_trail_functions_with_the_old_search_path_are_found_and_remade(pg_server):
    """A store whose functions were made before pg_temp was listed last: found as changed, remade by the owner's
    open, and the remaking recorded in the trail."""
    admin = pg_server.create_database("roles_oldpath")
    with ClinicStore.open(admin, training=False) as s:
        s.create_patient("P-0042")
    _as(admin, "ALTER FUNCTION cx_trail_patients() SET search_path = public")
    with ClinicStore.open(admin, training=False) as s:
        from workstation.store import pg_trail

        assert pg_trail.findings(s._conn) == []
        assert any(r.table_name == "trail_triggers" and "cx_trail_patients" in (r.new_json or "")
                   for r in trail.entries(s._conn))
        assert trail.verify(s._conn, trail_key()).intact
