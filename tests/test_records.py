"""Clinic records a regulator would accept: accounts and roles, the append-only hash-chained audit trail, identity
encrypted at rest, the free-text guard, private file modes. Real SQLite files, real processes for the CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from tests.conftest import sqlite_only
from workstation.errors import UserError
from workstation.keys import keys_dir, trail_key
from workstation.protocols import load_library
from workstation.store import ClinicStore, Identity, Response, Treatment, migrate, trail
from workstation.store import operators as ops
from workstation.store.db import DatabaseError, sqlite_db

REPO = Path(__file__).resolve().parents[1]
SMITH = Identity("Smith", "John", date(1970, 3, 4), "+44 20 7946 0001")


@pytest.fixture()
def store(store_url):
    s = ClinicStore.open(store_url, training=False)
    yield s
    s.close()


def _raw(path: Path) -> sqlite3.Connection:
    """A connection as another program (the sqlite3 tool) would have it: none of the program's functions."""
    return sqlite3.connect(path, isolation_level=None)


def _file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def _visit(store: ClinicStore) -> dict[str, int]:
    """One of every clinical write, as a signed-in clinician would make them."""
    p = store.create_patient("P-0042", identity=SMITH)
    store.add_screening_answer(p.id, "photosensitising_drugs", False, date.today(), "dr-a")
    store.add_med(p.id, "UVB-308", 300, date.today())
    a = store.add_area(p.id, "left-cheek", "face", "hypopigmented_scar", 4.0, "III")
    store.correct_area(a.id, who="dr-a", reason="measured again", size_cm2=5.0)
    course = store.create_course(p.id, load_library().get("hypopigmented-scar-light"), [a.id], date.today())
    sid = store.add_session(course.id, date.today(), device_model="UVB-308")
    store.add_treatment(sid, Treatment(a.id, "light", dose_mj_cm2=250.0))
    store.add_response(sid, Response(a.id, erythema_grade=1, notes="faint pink"))
    store.record_override(sid, a.id, "target_dose_mj_cm2", 260.0, 250.0, "patient anxious", "dr-a")
    store.link_recording(sid, "2026-11-30/x.h5", "ab" * 32)
    return {"patient": p.id, "area": a.id, "session": sid}


def test_every_clinical_write_is_trailed_with_the_signed_in_account(store):
    ops.add(store, "admin", "Admin", "administrator", "a-long-password", created_by="test")
    ops.add(store, "dr-a", "Dr A", "clinician", "another-password", created_by="admin")
    assert ops.sign_in(store, "dr-a", "another-password", "clinical").account == "dr-a"
    _visit(store)
    rows = trail.entries(store._conn)
    clinical = [e for e in rows if e.table_name not in ("operators", "meta")]
    assert {e.who for e in clinical} == {"dr-a"}
    tables = {e.table_name for e in clinical}
    assert tables >= {"patients", "patient_identity", "screening_answers", "med_measurements", "areas",
                      "area_changes", "courses", "course_areas", "sessions", "treatments", "responses",
                      "plan_overrides", "recordings"}
    change = next(e for e in clinical if e.action == "change" and e.table_name == "areas")
    assert json.loads(change.old_json)["size_cm2"] == 4.0 and json.loads(change.new_json)["size_cm2"] == 5.0
    assert change.reason == "measured again"
    assert all(e.at_utc.endswith("+00:00") for e in rows)
    assert trail.verify(store._conn, trail_key()).intact
    # The trail never holds a secret or an identity in clear.
    text = json.dumps([e.__dict__ for e in rows])
    assert "Smith" not in text and "1970-03-04" not in text and "$argon2" not in text


@sqlite_only  # another program on the SQLite file (raw sqlite3)
def test_the_trail_and_audit_tables_cannot_be_rewritten(store):
    _visit(store)
    conn = _raw(store.path)
    for sql in ("UPDATE audit_trail SET who = 'nobody'", "DELETE FROM audit_trail",
                "UPDATE area_changes SET who = 'nobody'", "DELETE FROM plan_overrides", "DELETE FROM area_changes"):
        with pytest.raises(sqlite3.DatabaseError, match="audit record"):
            conn.execute(sql)
    # Another program cannot change clinical data unrecorded: the triggers need this program's functions.
    for sql in ("UPDATE patients SET pseudonym = 'P-9999'", "DELETE FROM responses",
                "INSERT INTO med_measurements (patient_id, device_model, med_mj_cm2, measured_on) "
                "VALUES (1, 'X', 1, '2026-01-01')"):
        with pytest.raises(sqlite3.OperationalError, match="no such function"):
            conn.execute(sql)
    # Also through the program's own connection, inside a transaction.
    with pytest.raises(DatabaseError, match="audit record"):
        with store.transaction() as c:
            c.execute("DELETE FROM plan_overrides")
    assert len(store.overrides(1)) == 1


def _cli(*args: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "main.py"), *args], input=stdin, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("tamper", ["change", "delete", "insert"])
@sqlite_only  # the trail's SQLite triggers dropped with raw sqlite3
def test_a_trail_row_altered_around_the_program_is_found(store, tamper):
    _visit(store)
    store.close()
    assert _cli("trail", "verify", "--store", str(store.path)).returncode == 0
    conn = _raw(store.path)
    conn.execute("DROP TRIGGER trail_audit_trail_no_update")
    conn.execute("DROP TRIGGER trail_audit_trail_no_delete")
    conn.execute("DROP TRIGGER trail_audit_trail_guard")
    if tamper == "change":
        conn.execute("UPDATE audit_trail SET who = 'nobody' WHERE id = 5")
    elif tamper == "delete":
        conn.execute("DELETE FROM audit_trail WHERE id = 5")
    else:
        conn.execute("UPDATE audit_trail SET id = id + 100 WHERE id > 5")
        conn.execute("INSERT INTO audit_trail SELECT 6, at_utc, 'forger', action, table_name, row_id, old_json, "
                     "new_json, reason, prev_hash, hash FROM audit_trail WHERE id = 5")
    conn.close()
    r = _cli("trail", "verify", "--store", str(store.path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "BROKEN at row" in r.stdout
    assert "Traceback" not in r.stderr


@sqlite_only  # the SQLite file's bytes, and the file copied
def test_identity_is_encrypted_and_a_copied_store_alone_shows_no_name(store, tmp_path, monkeypatch):
    ids = _visit(store)
    assert store.identity(ids["patient"]) == SMITH
    store.close()
    raw = _file_bytes(store.path)
    # the contact with its spaces: four digits alone ("7946") turn up by chance in the trail's hex hashes
    for secret in (b"Smith", b"John", b"1970-03-04", b"20 7946 0001"):
        assert secret not in raw
    copy = tmp_path / "copied.sqlite3"
    copy.write_bytes(store.path.read_bytes())
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "other-workstation-config"))
    with ClinicStore.open(copy, training=False) as s:
        assert s.get_patient("P-0042").id == ids["patient"]  # the pseudonymous record works
        with pytest.raises(UserError, match="cannot be read with this workstation's identity key"):
            s.identity(ids["patient"])


def test_a_store_from_before_encryption_is_encrypted_on_open(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, upto=4, role="clinic")
    conn.execute("INSERT INTO patients VALUES (1, 'CX-OLD1', '2026-01-01T00:00:00+00:00')")
    conn.execute("INSERT INTO patient_identity VALUES (1, 'Oldname', 'Olga', '1955-05-06', '0123 456')")
    conn.close()
    with ClinicStore.open(path, training=False) as s:
        assert s.identity(1) == Identity("Oldname", "Olga", date(1955, 5, 6), "0123 456")
        assert "Oldname" not in json.dumps([e.__dict__ for e in trail.entries(s._conn)])
    raw = _file_bytes(path)
    assert b"Oldname" not in raw and b"1955-05-06" not in raw


@pytest.mark.parametrize("pseudonym", ["Smith-John-1970", "JohnSmith", "P-SMITH", "J-19700304"])
def test_a_pseudonym_made_of_the_identity_is_refused(store, pseudonym):
    with pytest.raises(UserError, match="contains the patient's"):
        store.create_patient(pseudonym, identity=SMITH)
    assert store.find_patient(pseudonym) is None
    p = store.create_patient(pseudonym)  # no identity typed: nothing to compare with
    with pytest.raises(UserError, match="register the patient again under a neutral pseudonym"):
        store.add_identity(p.id, SMITH)
    assert store.identity(p.id) is None


def test_free_text_with_the_identity_is_refused(store):
    ids = _visit(store)
    pid, aid, sid = ids["patient"], ids["area"], ids["session"]
    with pytest.raises(UserError, match="area label contains the patient's family name"):
        store.add_area(pid, "smith-scar", "face", "hypopigmented_scar", 1.0, "III")
    with pytest.raises(UserError, match="reason contains the patient's given name"):
        store.correct_area(aid, who="dr-a", reason="John asked for it", size_cm2=6.0)
    with pytest.raises(UserError, match="reason contains the patient's birth date"):
        store.record_override(sid, aid, "target_dose_mj_cm2", 250.0, 240.0, "born 04.03.1970, careful", "dr-a")
    with pytest.raises(UserError, match="screening note contains the patient's family name"):
        store.add_screening_answer(pid, "pregnancy", False, date.today(), "dr-a", notes="Mrs Smith says no")
    # Words that merely contain a short name are not refused.
    store.add_screening_answer(pid, "pregnancy", False, date.today(), "dr-a", notes="smithsonian leaflet given")


def test_accounts_roles_and_passwords(store):
    with pytest.raises(UserError, match="at least 10 characters"):
        ops.add(store, "dr-a", "Dr A", "clinician", "short", created_by="x")
    with pytest.raises(UserError, match="not valid"):
        ops.add(store, "Dr A", "Dr A", "clinician", "long-enough-pw", created_by="x")
    with pytest.raises(UserError, match="Role 'surgeon' is unknown"):
        ops.add(store, "dr-a", "Dr A", "surgeon", "long-enough-pw", created_by="x")
    ops.add(store, "admin", "Admin", "administrator", "long-enough-pw", created_by="x")
    ops.add(store, "dr-a", "Dr A", "clinician", "long-enough-pw", created_by="admin")
    ops.add(store, "tr-b", "Trainer B", "trainer", "long-enough-pw", created_by="admin")
    with pytest.raises(UserError, match="exists already"):
        ops.add(store, "dr-a", "Dr A", "clinician", "long-enough-pw", created_by="admin")
    for account, password in (("dr-a", "wrong-password"), ("nobody", "long-enough-pw")):
        with pytest.raises(UserError, match="The account or the password is wrong"):
            ops.authenticate(store, account, password)
    with pytest.raises(UserError, match="trainer account, which may not use clinical mode"):
        ops.sign_in(store, "tr-b", "long-enough-pw", "clinical")
    ops.set_active(store, "dr-a", False, reason="left the clinic")
    with pytest.raises(UserError, match="disabled"):
        ops.sign_in(store, "dr-a", "long-enough-pw", "clinical")
    with pytest.raises(UserError, match="last active administrator"):
        ops.set_active(store, "admin", False, reason="test")
    if store._conn.dialect == "sqlite":  # the file's bytes, free pages included
        assert b"long-enough-pw" not in store.path.read_bytes()
    assert "long-enough-pw" not in repr(store._all("SELECT * FROM operators"))


def test_operators_command_line(tmp_path):
    path = tmp_path / "c.sqlite3"
    r = _cli("operators", "add", "dr-a", "--role", "clinician", "--name", "Dr A", "--store", str(path),
             "--password-stdin", stdin="clinician-pw\n")
    assert r.returncode == 2 and "the first one must be an administrator" in r.stderr
    r = _cli("operators", "add", "admin", "--role", "administrator", "--name", "Admin", "--store", str(path),
             "--password-stdin", stdin="admin-password\n")
    assert r.returncode == 0, r.stderr
    r = _cli("operators", "add", "dr-a", "--role", "clinician", "--name", "Dr A", "--store", str(path),
             "--password-stdin", stdin="clinician-pw\n")
    assert r.returncode == 2 and "--admin" in r.stderr
    r = _cli("operators", "add", "dr-a", "--role", "clinician", "--name", "Dr A", "--store", str(path),
             "--admin", "admin", "--password-stdin", stdin="wrong-admin-pw\nclinician-pw\n")
    assert r.returncode == 2 and "password is wrong" in r.stderr
    r = _cli("operators", "add", "dr-a", "--role", "clinician", "--name", "Dr A", "--store", str(path),
             "--admin", "admin", "--password-stdin", stdin="admin-password\nclinician-pw\n")
    assert r.returncode == 0, r.stderr
    r = _cli("operators", "disable", "dr-a", "--reason", "left", "--store", str(path), "--admin", "admin",
             "--password-stdin", stdin="admin-password\n")
    assert r.returncode == 0, r.stderr
    listing = _cli("operators", "list", "--store", str(path)).stdout
    assert "admin" in listing and "dr-a" in listing and "disabled" in listing
    shown = _cli("trail", "show", "--store", str(path)).stdout
    assert "admin: change operators" in shown and "because 'left'" in shown
    assert _cli("trail", "verify", "--store", str(path)).stdout.startswith("audit trail intact: 5 rows")  # + the role marker and the trail key id


def test_store_and_keys_are_private(tmp_path):
    path = tmp_path / "new-folder" / "c.sqlite3"
    with ClinicStore.open(path, training=False) as s:
        s.create_patient("P-0042", identity=SMITH)
        for f in path.parent.iterdir():
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    keys = keys_dir()
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(k.stat().st_mode) == 0o600 for k in keys.iterdir())
    # A store found readable by others is tightened when opened.
    os.chmod(path, 0o644)
    ClinicStore.open(path, training=False).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_accounts_and_trail_use_the_store_in_force(tmp_path):
    from workstation import places

    store = tmp_path / "server" / "clinic.sqlite3"
    places.settings_file().parent.mkdir(parents=True, exist_ok=True)
    places.settings_file().write_text(f"[paths]\nstore = '{store}'\n")
    r = _cli("operators", "add", "admin", "--role", "administrator", "--name", "Admin", "--password-stdin",
             stdin="admin-password\n")
    assert r.returncode == 0, r.stderr
    assert not places.clinic_store_file().exists()  # not the default store: the one of the settings file
    with ClinicStore.open(store, training=False) as s:
        assert [o.account for o in ops.operators(s)] == ["admin"]
    assert _cli("trail", "verify").stdout.startswith("audit trail intact: 3 rows")  # + the role marker and the trail key id
    missing = _cli("operators", "list", "--store", str(tmp_path / "typo.sqlite3"))
    assert missing.returncode == 2 and "There is no clinic store" in missing.stderr
    assert not (tmp_path / "typo.sqlite3").exists()  # a read-only command creates nothing


def test_what_the_program_writes_is_private(tmp_path):
    """A headless session through the program's entry: recording, checksum, signature, store and log are 0600 in
    0700 folders (the process umask), readable by the clinic's account only."""
    from workstation import places

    out = tmp_path / "rec"
    r = _cli("session", "--simulate", "--scenario", "combined-uneventful", "--record", str(out), "--store",
             str(tmp_path / "training.sqlite3"))
    assert r.returncode in (0, 3), r.stdout + r.stderr  # completed, or a load-induced trip: files are written alike
    written = [p for p in out.rglob("*")] + [tmp_path / "training.sqlite3"] + list(places.log_dir().glob("*.log"))
    assert any(p.suffix == ".h5" for p in written) and any(p.name.endswith(".sig") for p in written)
    for p in written:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), (p, oct(mode))


@sqlite_only  # raw sqlite3 on the file, the SQLite triggers
def test_a_trail_rewritten_without_the_key_or_tables_changed_behind_it_are_found(store):
    """The fresh tester's attacks: a forged row with a recomputed plain hash, a whole trail rewritten, an account's
    role raised with the trigger dropped, the store's role marker changed: all found by `trail verify`."""
    import hashlib

    ops.add(store, "admin", "Admin", "administrator", "admin-password", created_by="test")
    ops.add(store, "dr-a", "Dr A", "clinician", "clinician-pw", created_by="admin")
    _visit(store)
    store.close()
    conn = _raw(store.path)
    with pytest.raises(sqlite3.OperationalError, match="no such function"):  # the guard: only the program writes
        conn.execute("INSERT INTO audit_trail (at_utc, who, action, table_name, row_id, reason, prev_hash, hash) "
                     "VALUES ('2026-01-01', 'admin', 'delete', 'patients', 99, 'forged', ?, ?)", ("0" * 64, "1" * 64))
    for name in ("guard", "no_update", "no_delete"):
        conn.execute(f"DROP TRIGGER trail_audit_trail_{name}")
    last_id, last_hash = conn.execute("SELECT id, hash FROM audit_trail ORDER BY id DESC LIMIT 1").fetchone()
    fields = (last_hash, "2026-11-30T00:00:00+00:00", "admin", "delete", "patients", "99", "\x00", "\x00", "forged")
    forged = hashlib.sha256("\x1f".join(fields).encode()).hexdigest()  # the formula without the clinic's key
    conn.execute("INSERT INTO audit_trail (at_utc, who, action, table_name, row_id, reason, prev_hash, hash) "
                 "VALUES (?, 'admin', 'delete', 'patients', 99, 'forged', ?, ?)", (fields[1], last_hash, forged))
    r = _cli("trail", "verify", "--store", str(store.path))
    assert r.returncode == 1 and f"BROKEN at row {last_id + 1}" in r.stdout and "trail key" in r.stdout
    conn.execute("DELETE FROM audit_trail WHERE id = ?", (last_id + 1,))  # (verify only reads: nothing put back)
    r = _cli("trail", "verify", "--store", str(store.path))  # the forged row removed; the triggers are still gone
    assert r.returncode == 1 and "trail_audit_trail_no_update was removed" in r.stdout, r.stdout
    assert "also not in place: trail_audit_trail_no_delete, trail_audit_trail_guard" in r.stdout
    r = _cli("trail", "repair", "--store", str(store.path))
    assert r.returncode == 1 and r.stdout.count("It was put back now") == 3, r.stdout + r.stderr
    r = _cli("trail", "verify", "--store", str(store.path))
    assert r.returncode == 0 and r.stdout.count("note: the trail's triggers were repaired") == 3, r.stdout
    # Raise an account's role behind the trail.
    conn.execute("DROP TRIGGER trail_operators_update")
    conn.execute("UPDATE operators SET role = 'administrator' WHERE account = 'dr-a'")
    report = trail.verify(sqlite_db(conn), trail_key())
    assert not report.intact and "trigger trail_operators_update was removed" in report.problem
    r = _cli("trail", "verify", "--store", str(store.path))  # both: the trigger gone and the row changed
    assert r.returncode == 1 and "operators row 2 differs from the trail in role" in r.stdout
    assert "trail_operators_update was removed" in r.stdout
    conn.execute("UPDATE operators SET role = 'clinician' WHERE account = 'dr-a'")  # back as the trail says
    conn.execute("DROP TRIGGER trail_meta_update")
    conn.execute("UPDATE meta SET value = 'training' WHERE key = 'role'")
    assert "trail_meta_update was removed" in trail.verify(sqlite_db(conn), trail_key()).problem
    for sql in trail._wanted_triggers(sqlite_db(conn)):  # every trigger put back...
        if sql.split()[2] in ("trail_meta_update", "trail_operators_update"):
            conn.execute(sql)
    assert "meta row role differs from the trail in value" in trail.verify(sqlite_db(conn), trail_key()).problem  # ...found (by key)
    conn.execute("DROP TRIGGER trail_meta_update")
    conn.execute("UPDATE meta SET value = 'clinic' WHERE key = 'role'")
    ClinicStore.open(store.path, training=False).close()  # triggers back
    with pytest.raises(sqlite3.OperationalError, match="no such function"):  # the role marker is trailed too
        conn.execute("UPDATE meta SET value = 'training' WHERE key = 'role'")
    conn.close()
    ClinicStore.open(store.path, training=False).close()
    assert _cli("trail", "verify", "--store", str(store.path)).returncode == 0


@pytest.mark.parametrize("text", ["P-05041970", "cheek 4 May 1970", "cheek May 4, 1970", "cheek 1970/05/04",
                                  "born 04.05.70", "call 555-0199 tomorrow", "4th May 1970", "May 4th, 1970",
                                  "4/5/1970", "4.5.1970", "5/4/1970", "1970-5-4", "04-May-1970", "4 May 70",
                                  "Mrs Smíth agreed"])
def test_birth_date_and_contact_in_every_written_form_are_refused(store, text):
    p = store.create_patient("P-0077", identity=Identity("Smith", "John", date(1970, 5, 4), "call 555-0199"))
    with pytest.raises(UserError, match="contains the patient's (birth date|contact number|family name)"):
        store.add_screening_answer(p.id, "pregnancy", False, date.today(), "dr-a", notes=text)


def test_a_store_never_holds_identities_under_two_keys(store, tmp_path, monkeypatch):
    store.create_patient("P-0042", identity=SMITH)
    store.close()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "another-workstation"))  # no key there: one is made
    with ClinicStore.open(store.path, training=False) as s:
        with pytest.raises(UserError, match="does not have the clinic's audit-trail key"):  # nothing is written here
            s.create_patient("P-0043", identity=Identity("Doe", "Jane"))
        assert s.find_patient("P-0043") is None
        assert s.get_patient("P-0042")  # the pseudonymous record still reads


def test_a_disabled_account_stops_writing_at_once(store):
    ops.add(store, "admin", "Admin", "administrator", "admin-password", created_by="test")
    ops.add(store, "dr-b", "Dr B", "clinician", "clinician-pw", created_by="admin")
    ops.sign_in(store, "dr-b", "clinician-pw", "clinical")
    store.create_patient("P-0100")
    with ClinicStore.open(store.path, training=False) as admin:
        ops.sign_in(admin, "admin", "admin-password", "accounts")
        ops.set_active(admin, "dr-b", False, reason="left the clinic")
    with pytest.raises(UserError, match="dr-b was disabled by an administrator: nothing was saved"):
        store.create_patient("P-0101")
    assert store.find_patient("P-0101") is None


def test_two_first_starts_at_once_make_one_administrator(tmp_path):
    path = tmp_path / "new.sqlite3"
    procs = [subprocess.Popen([sys.executable, str(REPO / "main.py"), "operators", "add", f"a{i}", "--role",
                               "administrator", "--name", f"A{i}", "--store", str(path), "--password-stdin"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(3)]
    outs = [p.communicate("a-long-password\n", timeout=60) for p in procs]
    assert sum(p.returncode == 0 for p in procs) == 1, outs
    assert all("Traceback" not in err for _, err in outs)
    with ClinicStore.open(path, training=False) as s:
        assert len(ops.operators(s)) == 1


def test_devices_changes_to_the_clinic_record_need_a_signed_in_account(tmp_path):
    path = tmp_path / "clinic.sqlite3"
    with ClinicStore.open(path, training=False) as s:
        ops.add(s, "admin", "Admin", "administrator", "admin-password", created_by="test")
        ops.add(s, "dr-a", "Dr A", "clinician", "clinician-pw", created_by="admin")
    base = ["devices", "--store", str(path), "--password-stdin"]
    check = ["check", "--serial", "UVB308-1", "--meter", "Solarmeter #1", "--measured", "100", "--reported", "100"]
    r = _cli(*base, *check, "--who", "dr-nobody-fake", stdin="anything\n")
    assert r.returncode == 2 and "account or the password is wrong" in r.stderr
    r = _cli(*base, *check, "--who", "dr-a", stdin="wrong-password\n")
    assert r.returncode == 2 and "account or the password is wrong" in r.stderr
    r = _cli(*base, "interval", "365", "--who", "dr-a", stdin="clinician-pw\n")
    assert r.returncode == 2 and "clinician account, which may not manage the clinic's protocols" in r.stderr
    r = _cli(*base, *check, "--who", "dr-a", stdin="clinician-pw\n")
    assert r.returncode == 0, r.stderr
    with ClinicStore.open(path, training=False) as s:
        checks = [e for e in trail.entries(s._conn, table="radiometer_checks")]
        assert [e.who for e in checks] == ["dr-a"] and json.loads(checks[0].new_json)["who"] == "dr-a"


@sqlite_only  # the sqlite3 tool on the file
def test_records_changed_around_the_program_are_not_trusted(store, tmp_path, monkeypatch):
    """The second tester's attacks: a role raised with the sqlite3 tool cannot sign in; a clinic store relabelled
    'training' does not open; a workstation without the clinic's trail key writes nothing."""
    ops.add(store, "admin", "Admin", "administrator", "admin-password", created_by="test")
    ops.add(store, "eng", "Engineer", "engineer", "engineer-pw", created_by="admin")
    store.close()
    conn = _raw(store.path)
    conn.execute("DROP TRIGGER trail_operators_update")
    conn.execute("UPDATE operators SET role = 'administrator' WHERE account = 'eng'")
    with ClinicStore.open(store.path, training=False) as s:
        with pytest.raises(UserError, match="changed around the program"):
            ops.sign_in(s, "eng", "engineer-pw", "accounts")
    conn.execute("DROP TRIGGER trail_operators_update")
    conn.execute("UPDATE operators SET role = 'engineer' WHERE account = 'eng'")
    conn.execute("DROP TRIGGER trail_meta_update")
    conn.execute("UPDATE meta SET value = 'training' WHERE key = 'role'")
    with pytest.raises(UserError, match="marker was changed around the program"):
        ClinicStore.open(store.path, training=True)
    conn.execute("UPDATE meta SET value = 'clinic' WHERE key = 'role'")
    conn.close()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "a-workstation-without-the-keys"))
    with ClinicStore.open(store.path, training=False) as s:
        assert [o.account for o in ops.operators(s)] == ["admin", "eng"]  # reads work
        with pytest.raises(UserError, match="does not have the clinic's audit-trail key"):
            s.create_patient("P-0300")
    r = _cli("trail", "verify", "--store", str(store.path))
    assert r.returncode == 2 and "cannot be checked here" in r.stderr


@pytest.mark.parametrize("text", ["area 1: 0.4 cm, 05 passes 1970", "dose 900.123 mJ", "light 220 mJ at 1970 s",
                                  "smithsonian leaflet given", "session 12345"])
def test_numbers_that_merely_contain_the_digits_are_not_refused(store, text):
    p = store.create_patient("P-0078", identity=Identity("Smith", "John", date(1970, 5, 4), "900 123"))
    store.add_screening_answer(p.id, "pregnancy", False, date.today(), "dr-a", notes=text)


@sqlite_only  # the table's trigger dropped with raw sqlite3
def test_a_table_changed_around_the_trail_is_reported_as_the_store_not_a_row_of_the_chain(store):
    """From the fresh tester of issue 17: a change found by the replay was reported "BROKEN at row N+1" (one past the
    last row), as if a link were broken; every link holds, the store differs from what they record."""
    _visit(store)
    store.close()
    conn = _raw(store.path)
    conn.execute("DROP TRIGGER trail_patients_update")
    conn.execute("UPDATE patients SET pseudonym = 'P-9999' WHERE id = 1")
    conn.close()
    r = _cli("trail", "verify", "--store", str(store.path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "audit trail BROKEN: " in r.stdout and "Every link of its" in r.stdout and "at row" not in r.stdout
    assert "patients row 1" in r.stdout and "None" not in r.stdout


def test_a_unique_index_dropped_around_the_program_is_reported(store_url):
    """From the fresh tester of issue 17: the owner dropped the one-light-session-per-area-per-day index and `trail
    verify` said "intact". The schema's unique indexes are part of what verify checks."""
    from workstation.keys import trail_key
    from workstation.store import trail

    with ClinicStore.open(store_url, training=False) as s:
        assert trail.verify(s._conn, trail_key()).intact
        s._conn.execute("DROP INDEX treatments_one_light_session_per_area_day")
        report = trail.verify(s._conn, trail_key())
    assert not report.intact and not report.in_chain
    assert "treatments_one_light_session_per_area_day" in report.problem and "no longer holds" in report.problem
