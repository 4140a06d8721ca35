"""The trail's newest rows deleted around the program (issue 17): on PostgreSQL by the superuser with
`session_replication_role = replica` (triggers off), on SQLite with the trail's triggers dropped and put back. What
is left is a shorter chain that verifies; only the anchor this workstation keeps outside the database
(workstation.store.trail_anchor) shows it, and `trail verify` says BROKEN. A workstation that never saw those rows
cannot tell (docs/deployment.md). Both engines (store_url), real SQLite and a real PostgreSQL server."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from main import main
from workstation.keys import trail_key
from workstation.store import ClinicStore, trail, trail_anchor


def _cut_the_tail(store_url: str, keep: int, pseudonym: str) -> None:
    """Delete the patient `pseudonym` and every trail row after row `keep`, around the program: as PostgreSQL's
    superuser in replica mode (no trigger fires), or on the SQLite file with the guarding triggers dropped, then
    made again exactly as they were (so no trigger is found missing afterwards)."""
    if "://" not in store_url:
        conn = sqlite3.connect(store_url)
        guards = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN "
                              "('trail_audit_trail_no_delete', 'trail_patients_delete')").fetchall()
        assert len(guards) == 2
        with conn:
            for name, _sql in guards:
                conn.execute(f"DROP TRIGGER {name}")
            conn.execute("DELETE FROM patients WHERE pseudonym = ?", (pseudonym,))
            conn.execute("DELETE FROM audit_trail WHERE id > ?", (keep,))
            for _name, sql in guards:
                conn.execute(sql)
        conn.close()
        return
    u = make_url(store_url)
    with psycopg.connect(f"dbname={u.database} user={u.username} host={u.query['host']}", autocommit=True) as c:
        c.execute("BEGIN")
        c.execute("SET LOCAL session_replication_role = replica")
        c.execute("DELETE FROM patients WHERE pseudonym = %s", (pseudonym,))
        c.execute("DELETE FROM audit_trail WHERE id > %s", (keep,))
        c.execute("COMMIT")


def _two_patients(store_url: str) -> tuple[int, int]:
    """(the trail's last row before the second patient, its last row after)."""
    with ClinicStore.open(store_url, training=False) as s:
        s.create_patient("P-0001")
        keep = trail_anchor.head(s._conn)[0]
        s.create_patient("P-0002")
        end = trail_anchor.head(s._conn)[0]
    return keep, end


def test_the_newest_trail_rows_deleted_around_the_program_are_found_by_the_workstation_that_saw_them(
        store_url, capsys, tmp_path, monkeypatch):
    keep, end = _two_patients(store_url)
    with ClinicStore.open(store_url, training=False, read_only=True) as s:
        anchor = trail_anchor.seen(s)
        assert anchor is not None and anchor.seq == end  # noted at the commit that wrote it
    _cut_the_tail(store_url, keep, "P-0002")
    with ClinicStore.open(store_url, training=False, read_only=True) as s:
        assert s.find_patient("P-0002") is None
        report = trail.verify(s._conn, trail_key())
        assert report.intact, report.problem  # the shorter chain verifies: the chain alone cannot see it
        report = trail.verify(s._conn, trail_key(), anchor=trail_anchor.seen(s))
        assert not report.intact and report.first_broken_id == keep + 1

    assert main(["trail", "verify", "--store", store_url]) == 1
    out = capsys.readouterr().out
    assert f"audit trail BROKEN at row {keep + 1}: the trail ends at row {keep} but this workstation saw row {end} " \
           f"(hash {anchor.hash[:16]}…)" in out, out
    assert "removed from the trail's end" in out

    # this workstation writes on: its anchor never moves past the cut, so the evidence stays
    with ClinicStore.open(store_url, training=False) as s:
        for i in range(3, 3 + (end - keep) + 2):
            s.create_patient(f"P-{i:04d}")
        assert trail_anchor.seen(s).seq == end
    assert main(["trail", "verify", "--store", store_url]) == 1
    out = capsys.readouterr().out
    assert "BROKEN" in out and (f"row {end} is not the row this workstation saw there" in out  # SQLite: ids reused
                                or "are missing before row" in out), out  # PostgreSQL: its sequence goes on

    # a workstation that never saw the deleted rows (its own state folder) cannot tell: the limit, documented
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "another-workstation"))
    with ClinicStore.open(store_url, training=False, read_only=True) as s:
        assert trail_anchor.seen(s) is None


def test_an_intact_trail_verifies_and_raises_the_anchor_which_never_goes_down(store_url, capsys):
    keep, end = _two_patients(store_url)
    assert main(["trail", "verify", "--store", store_url]) == 0
    assert "audit trail intact" in capsys.readouterr().out
    with ClinicStore.open(store_url, training=False, read_only=True) as s:
        assert trail_anchor.seen(s).seq == end
        trail_anchor.note(s, keep, "an older row")  # another process noting an older row: kept as it was
        assert trail_anchor.seen(s).seq == end
    path = trail_anchor.anchor_file()
    assert path.is_file() and Path(path).stat().st_size > 0


def test_a_training_store_is_not_anchored(tmp_path):
    with ClinicStore.open(tmp_path / "training.sqlite3", training=True) as s:
        s.create_patient("P-0001")
        assert trail_anchor.seen(s) is None
    assert not trail_anchor.anchor_file().exists()
