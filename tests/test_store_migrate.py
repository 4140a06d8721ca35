"""`main.py store migrate --to URL` (workstation.store.move): a single-room SQLite store moved into an empty
PostgreSQL database keeps every row with its id, its audit trail as it was (the chain verifies before and after,
under the same key), and the moved store goes on working; a target that is not empty and a source whose trail does
not verify are refused in words. Real server (tests/conftest.py pg_server), real SQLite."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import date

from workstation.keys import trail_key
from workstation.store import ClinicStore, Identity, trail
from workstation.store import operators as ops


def _migrate(source, url) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "main.py", "store", "migrate", "--store", str(source), "--to", url],
                          capture_output=True, text=True, timeout=180)


def _a_clinic(path) -> int:
    with ClinicStore.open(path, training=False) as s:
        ops.add(s, "admin", "Administrator", "administrator", "correct horse battery", created_by="setup",
                first=True)
        s.actor = "admin"
        for n in range(3):
            p = s.create_patient(f"P-{n:04d}", Identity("Smithson", f"Alex{n}"))
            area = s.add_area(p.id, "left cheek", "face", "hypopigmented_scar", 2.5 + n / 3, "III")
            s.add_med(p.id, "XTRAC", 0.1 + 0.2, date(2026, 1, 2))
        s.close_area(area.id, date(2026, 2, 1), who="admin", reason="healed")
        with s.transaction("entered twice") as c:
            c.execute("DELETE FROM med_measurements WHERE patient_id = ?", (p.id,))
        return len(trail.entries(s._conn))


def test_a_clinic_moves_to_the_server_with_its_ids_values_and_trail(tmp_path, pg_server):
    source = tmp_path / "clinic.sqlite3"
    rows = _a_clinic(source)
    url = pg_server.create_database("moved")
    done = _migrate(source, url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"audit trail of {source} verified: {rows} rows" in done.stdout
    assert f"verified after the copy: {rows} rows" in done.stdout and "patients: 3 rows copied" in done.stdout
    with ClinicStore.open(url, training=False) as s, ClinicStore.open(source, training=False) as old:
        assert [e for e in trail.entries(s._conn)] == [e for e in trail.entries(old._conn)]  # as they were
        assert s.find_patient("P-0002").id == old.find_patient("P-0002").id
        assert s.identity(1) == Identity("Smithson", "Alex0")
        assert s.meds(1)[0].med_mj_cm2 == 0.1 + 0.2  # the double as it was, not as JSON printed it
        assert ops.authenticate(s, "admin", "correct horse battery").account == "admin"
        new = s.create_patient("P-0100")  # ids go on after the copied ones; the trail chains on
        assert new.id == 4
        report = trail.verify(s._conn, trail_key())
        assert report.intact and report.rows == rows + 1, report.problem
    again = _migrate(source, url)
    assert again.returncode == 2 and "is not empty" in again.stderr + again.stdout
    assert "Traceback" not in again.stderr


def test_a_store_whose_trail_does_not_verify_is_not_moved(tmp_path, pg_server):
    source = tmp_path / "clinic.sqlite3"
    _a_clinic(source)
    raw = sqlite3.connect(source)
    raw.executescript("DROP TRIGGER trail_patients_update; UPDATE patients SET pseudonym = 'P-9999' WHERE id = 1;")
    raw.close()
    url = pg_server.create_database("not_moved")
    done = _migrate(source, url)
    assert done.returncode == 2 and "does not verify" in done.stderr + done.stdout, done.stdout + done.stderr
    assert "patients row 1 differs from the trail in pseudonym" in done.stderr + done.stdout
    with ClinicStore.open(url, training=False) as s:  # nothing was made there: a new, empty store
        assert s.find_patient("P-0000") is None


def test_a_training_store_is_not_moved_to_the_server(tmp_path, pg_server):
    """From the fresh tester of issue 17: a training store (`session --store FILE`) moved without a word and then no
    clinic command could open the server's copy."""
    source = tmp_path / "training.sqlite3"
    with ClinicStore.open(source, training=True) as s:
        s.create_patient("TRAIN-0001")
    url = pg_server.create_database("move_training")
    r = _migrate(source, url)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "is a training store" in r.stderr and "Nothing was copied" in r.stderr and "Traceback" not in r.stderr
