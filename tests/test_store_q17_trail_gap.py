"""A trail trigger disabled or dropped around the program (issue 17, q17 item 1): opening the store must not mend it
quietly. `trail verify` (which only reads) says BROKEN and names the trigger; a command that writes (or `trail
repair`) puts it back and the trail notes the repair (who, when, what was wrong), so the gap in which writes went
unrecorded stays visible afterwards. Both engines (store_url), real SQLite and a real PostgreSQL server."""

from __future__ import annotations

import json
import sqlite3

import psycopg
from sqlalchemy.engine import make_url

from main import main
from workstation.keys import trail_key
from workstation.store import ClinicStore, trail
from workstation.store.trail import default_actor
from workstation.store.trail_repair import REPAIR_TABLE, trigger_findings


def _tamper(store_url: str, sql_sqlite: str, sql_pg: str) -> None:
    """Another program's statements: the sqlite3 module on the file, or psycopg as the server's superuser."""
    if "://" not in store_url:
        conn = sqlite3.connect(store_url)
        conn.executescript(sql_sqlite)
        conn.close()
        return
    u = make_url(store_url)
    with psycopg.connect(f"dbname={u.database} user={u.username} host={u.query['host']}", autocommit=True) as c:
        c.execute(sql_pg)


def _trigger(store_url: str) -> str:
    """The trigger that trails an UPDATE of patients on this engine."""
    return "trail_patients_update" if "://" not in store_url else "trail_patients"


def _a_store(store_url: str) -> int:
    with ClinicStore.open(store_url, training=False) as s:
        s.create_patient("P-0042")
        assert trail.verify(s._conn, trail_key()).intact
        return len(trail.entries(s._conn))


def _disable_and_write(store_url: str) -> None:
    _tamper(store_url, "DROP TRIGGER trail_patients_update; UPDATE patients SET pseudonym = 'P-9999' WHERE id = 1;",
            "ALTER TABLE patients DISABLE TRIGGER trail_patients; "
            "UPDATE patients SET pseudonym = 'P-9999' WHERE id = 1")


def test_verify_reports_a_disabled_trigger_and_a_repair_is_noted_in_the_trail(store_url, capsys):
    rows = _a_store(store_url)
    _disable_and_write(store_url)
    name, state = _trigger(store_url), "removed" if "://" not in store_url else "disabled"

    assert main(["trail", "verify", "--store", store_url]) == 1
    out = capsys.readouterr().out
    assert "audit trail BROKEN" in out and f"the trail trigger {name} was {state}" in out, out
    assert "patients row 1 differs from the trail in pseudonym" in out  # the write made in the gap, found too
    assert "trail repair" in out
    assert main(["operators", "list", "--store", store_url]) == 0  # another command that only reads...
    err = capsys.readouterr().err
    assert f"warning: audit trail: the trail trigger {name} was {state}" in err  # ...says it, and leaves it so
    assert main(["trail", "verify", "--store", store_url]) == 1
    assert f"trigger {name} was {state}" in capsys.readouterr().out  # still found: nothing mended it quietly
    with ClinicStore.open(store_url, training=False, read_only=True) as s:
        assert [f.name for f in trigger_findings(s._conn)] == [name]
        assert len(trail.entries(s._conn)) == rows  # nothing was written by the reading commands

    assert main(["trail", "repair", "--store", store_url]) == 1
    out = capsys.readouterr().out
    assert f"the trail trigger {name} was {state}" in out and "It was put back now" in out
    with ClinicStore.open(store_url, training=False, read_only=True) as s:
        assert trigger_findings(s._conn) == []
        [note] = trail.entries(s._conn, table=REPAIR_TABLE)
        assert note.id == rows + 1 and note.action == "change" and note.who == default_actor()
        assert json.loads(note.old_json) == {"trigger": name, "table": "patients",
                                             "state": "missing" if "://" not in store_url else "disabled"}
        assert json.loads(note.new_json)["state"] == "reinstalled"
        assert f"the trail trigger {name} was found" in note.reason and f"reinstalled by {default_actor()}" in note.reason
        assert "are not in the trail" in note.reason and note.at_utc.endswith("+00:00")
        report = trail.verify(s._conn, trail_key())
        assert not report.intact and not report.in_chain  # the row written in the gap still differs from the trail
        assert report.problem.startswith("patients row 1 differs") and "trigger" not in report.problem
        assert len(report.repairs) == 1 and name in report.repairs[0] and f"trail row {note.id}" in report.repairs[0]
    assert main(["trail", "verify", "--store", store_url]) == 1
    out = capsys.readouterr().out
    assert f"note: the trail's triggers were repaired: trail row {rows + 1}" in out and name in out
    assert main(["trail", "show", "--store", store_url, "--table", REPAIR_TABLE]) == 0
    assert f"change {REPAIR_TABLE} because" in capsys.readouterr().out
    assert main(["trail", "repair", "--store", store_url]) == 0  # nothing left to put back: nothing noted
    assert "every trigger of the audit trail is in place" in capsys.readouterr().out


def test_an_open_that_writes_puts_the_trigger_back_noted_and_says_so(store_url):
    rows = _a_store(store_url)
    _tamper(store_url, "DROP TRIGGER trail_patients_update;", "DROP TRIGGER trail_patients ON patients")
    name = _trigger(store_url)
    with ClinicStore.open(store_url, training=False) as s:  # e.g. the window, a session
        assert len(s.trail_findings) == 1 and f"the trail trigger {name} was removed" in s.trail_findings[0]
        assert "put back now" in s.trail_findings[0]
        [note] = trail.entries(s._conn, table=REPAIR_TABLE)
        assert json.loads(note.old_json)["state"] == "missing" and note.id == rows + 1
        report = trail.verify(s._conn, trail_key())
        assert report.intact and len(report.repairs) == 1, report.problem  # nothing was written in the gap
        with s.transaction("typo") as c:  # and writes are trailed again
            c.execute("UPDATE patients SET pseudonym = 'P-0043' WHERE id = 1")
        assert trail.entries(s._conn, table="patients")[-1].action == "change"
    with ClinicStore.open(store_url, training=False) as s:  # the next open finds everything in place: no new note
        assert s.trail_findings == [] and len(trail.entries(s._conn, table=REPAIR_TABLE)) == 1
        assert trail.verify(s._conn, trail_key()).intact


def test_a_trail_that_never_lost_a_trigger_gets_no_note(store_url):
    _a_store(store_url)
    for _ in range(2):
        with ClinicStore.open(store_url, training=False) as s:
            assert s.trail_findings == [] and trail.entries(s._conn, table=REPAIR_TABLE) == []
            report = trail.verify(s._conn, trail_key())
            assert report.intact and report.repairs == ()


def test_a_write_in_the_gap_stays_found_after_the_program_writes_the_row_again(store_url):
    _a_store(store_url)
    _disable_and_write(store_url)
    with ClinicStore.open(store_url, training=False) as s:  # puts the trigger back, noted
        with s.transaction("pseudonym corrected") as c:  # the program writes the row again: the live row now
            c.execute("UPDATE patients SET pseudonym = 'P-0043' WHERE id = 1")  # matches the trail...
        report = trail.verify(s._conn, trail_key())
        last = trail.entries(s._conn, table="patients")[-1].id
        assert not report.intact and len(report.repairs) == 1  # ...but its old values show the change in the gap
        assert report.problem == (f"patients row 1 was changed around the program before trail row {last} (its old "
                                  "values there differ from what the trail last recorded in pseudonym)")


def test_a_trigger_replaced_by_one_that_records_nothing_is_found_as_changed(store_url, capsys):
    _a_store(store_url)
    if "://" in store_url:
        name = "cx_trail_patients"
        _tamper(store_url, "", "CREATE OR REPLACE FUNCTION cx_trail_patients() RETURNS trigger LANGUAGE plpgsql "
                               "SECURITY DEFINER SET search_path = public AS $f$ BEGIN RETURN NULL; END $f$")
    else:
        name = "trail_patients_update"
        _tamper(store_url, "DROP TRIGGER trail_patients_update; CREATE TRIGGER trail_patients_update AFTER UPDATE ON "
                           "patients BEGIN SELECT 1; END;", "")
    assert main(["trail", "verify", "--store", store_url]) == 1
    assert f"{name} was changed: writes to patients could have gone unrecorded since" in capsys.readouterr().out
    with ClinicStore.open(store_url, training=False) as s:
        [note] = trail.entries(s._conn, table=REPAIR_TABLE)
        assert json.loads(note.old_json)["state"] == "changed" and json.loads(note.old_json)["trigger"] == name
        assert trail.verify(s._conn, trail_key()).intact


def test_the_application_account_cannot_mend_a_disabled_trigger_and_says_which(pg_server, capsys):
    from workstation.errors import UserError
    from workstation.store.roles import APP, apply_roles

    owner = pg_server.create_database("q17_gap_roles")
    with ClinicStore.open(owner, training=False) as s:
        s.create_patient("P-0042")
        apply_roles(s._conn)
    _tamper(owner, "", "ALTER TABLE patients DISABLE TRIGGER trail_patients")
    app = pg_server.url("q17_gap_roles", user=APP)
    try:
        ClinicStore.open(app, training=False).close()
    except UserError as exc:
        refused = str(exc)
    else:
        raise AssertionError("the application account opened a store with a disabled trail trigger for writing")
    assert "the trail trigger trail_patients was disabled" in refused and "trail repair" in refused
    assert main(["trail", "verify", "--store", app]) == 1  # the workstations' account reads, and sees it
    assert "the trail trigger trail_patients was disabled" in capsys.readouterr().out
    assert main(["trail", "repair", "--store", owner]) == 1  # the owner (here the superuser) puts it back
    capsys.readouterr()
    with ClinicStore.open(app, training=False) as s:
        [note] = trail.entries(s._conn, table=REPAIR_TABLE)
        account = make_url(owner).username
        assert f"(database account {account})" in note.reason and "was found disabled" in note.reason
        s.create_patient("P-0043")
        assert trail.verify(s._conn, trail_key()).intact
