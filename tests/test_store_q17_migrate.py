"""`store migrate --to` is all or nothing (issue 17, q17 item 3): an account that lacks a right the move needs is
refused in words naming the right, before anything is made; a move that fails after the schema was made removes what
it made, so the database is empty again and a retry (as an account that may) succeeds instead of refusing "not
empty". Real roles without rights on the run's throw-away server (tests/conftest.py pg_server), real SQLite."""

from __future__ import annotations

import secrets
import subprocess
import sys
from datetime import date

import psycopg
import pytest
from sqlalchemy.engine import make_url

from workstation.errors import UserError
from workstation.store import ClinicStore, trail
from workstation.store import move as move_module
from workstation.store.move import migrate_to_server


def _su(pg_server, sql: str, database: str = "postgres") -> list[tuple]:
    u = make_url(pg_server.url(database))
    with psycopg.connect(f"dbname={database} user={u.username} host={u.query['host']}", autocommit=True) as c:
        cur = c.execute(sql)
        return cur.fetchall() if cur.description else []


def _weak_database(pg_server, *, owner: bool) -> tuple[str, str, str]:
    """(database, role, URL as that role): a LOGIN role that is not a superuser; with `owner` it owns the new
    database (so it may create tables and the pgcrypto extension there), else it may only connect."""
    tag = secrets.token_hex(4)
    role, database = f"q17_weak_{tag}", f"q17_target_{tag}"
    _su(pg_server, f"CREATE ROLE {role} LOGIN")
    _su(pg_server, f"CREATE DATABASE {database}" + (f" OWNER {role}" if owner else ""))
    return database, role, pg_server.url(database, user=role)


def _tables(pg_server, database: str) -> list[str]:
    return [r[0] for r in _su(pg_server, "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                         "'public'", database)]


def _functions(pg_server, database: str) -> list[str]:
    return [r[0] for r in _su(pg_server, "SELECT p.proname FROM pg_proc p JOIN pg_namespace s ON s.oid = "
                                         "p.pronamespace WHERE s.nspname = 'public'", database)]


def _a_clinic(path) -> int:
    with ClinicStore.open(path, training=False) as s:
        p = s.create_patient("P-0001")
        s.add_med(p.id, "XTRAC", 400, date(2026, 1, 2))
        return len(trail.entries(s._conn))


def _migrate(source, url) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "main.py", "store", "migrate", "--store", str(source), "--to", url],
                          capture_output=True, text=True, timeout=180)


def test_an_owner_without_superuser_is_refused_naming_the_right_and_nothing_is_left(tmp_path, pg_server):
    source = tmp_path / "clinic.sqlite3"
    rows = _a_clinic(source)
    database, role, url = _weak_database(pg_server, owner=True)
    done = _migrate(source, url)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"The account {role} may not move the store" in done.stderr
    assert "SET on the parameter session_replication_role" in done.stderr and "Nothing was copied" in done.stderr
    assert "Traceback" not in done.stderr and "permission denied" not in done.stderr  # never the server's text
    assert _tables(pg_server, database) == [] and _functions(pg_server, database) == []
    again = _migrate(source, pg_server.url(database))  # the retry as the superuser: the database is still empty
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"verified after the copy: {rows} rows" in again.stdout and "patients: 1 row copied" in again.stdout


def test_an_account_that_may_not_create_tables_is_refused_naming_the_right(tmp_path, pg_server):
    source = tmp_path / "clinic.sqlite3"
    _a_clinic(source)
    database, role, url = _weak_database(pg_server, owner=False)
    _su(pg_server, "REVOKE CREATE ON SCHEMA public FROM PUBLIC", database)
    done = _migrate(source, url)
    assert done.returncode == 2 and f"The account {role} may not move the store" in done.stderr, done.stderr
    assert "CREATE on the database's schema" in done.stderr
    assert _tables(pg_server, database) == []


def test_a_move_that_fails_after_the_schema_was_made_removes_it(tmp_path, pg_server, monkeypatch):
    """The check before the move passed (here: skipped), then the copy is refused by the server for the right it
    lacks: the tables, functions and extension the move made are removed again, and the sentence names the right."""
    source = tmp_path / "clinic.sqlite3"
    _a_clinic(source)
    database, role, url = _weak_database(pg_server, owner=True)
    assert "pgcrypto" not in [r[0] for r in _su(pg_server, "SELECT extname FROM pg_extension", database)]
    monkeypatch.setattr(move_module, "_check_rights", lambda db, where: None)
    made = []
    real_copy = move_module._copy

    def copy_and_see(src, dst):  # what the move made before it copies (the tables), seen from outside
        made.extend(_tables(pg_server, database))
        return real_copy(src, dst)
    monkeypatch.setattr(move_module, "_copy", copy_and_see)
    with pytest.raises(UserError, match="SET on the parameter session_replication_role") as refused:
        migrate_to_server(source, url)
    assert f"The account {role} may not move the store" in str(refused.value)
    assert "patients" in made and "audit_trail" in made  # the schema had been made...
    assert _tables(pg_server, database) == [] and _functions(pg_server, database) == []  # ...and is gone again
    assert "pgcrypto" not in [r[0] for r in _su(pg_server, "SELECT extname FROM pg_extension", database)]
    _su(pg_server, f"GRANT SET ON PARAMETER session_replication_role TO {role}")  # the right given: the retry works
    monkeypatch.undo()
    lines = migrate_to_server(source, url)
    assert any("patients: 1 row copied" in line for line in lines), lines
