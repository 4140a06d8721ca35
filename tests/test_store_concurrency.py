"""The clinic store shared by real processes: a new store opened by several at once, a store another program holds,
the same pseudonym created by two at once. Every failure is a sentence, never SQLite's text."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from workstation.errors import UserError
from workstation.store import LATEST_VERSION, ClinicStore
from workstation.store.connection import BUSY_TIMEOUT_MS

REPO = Path(__file__).resolve().parents[1]

# A child that waits for a common start instant, then runs BODY; it prints OK, or USER: <sentence>, and lets any other
# exception escape (a traceback and a non-zero exit fail the test).
CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {repo!r})
    from workstation.errors import UserError
    from workstation.store import ClinicStore
    path, start = sys.argv[1], float(sys.argv[2])
    while time.time() < start:
        time.sleep(0.0005)
    try:
    {body}
        print("OK")
    except UserError as exc:
        print("USER:", exc)
    """
)


def _run_together(body: str, path: Path, extras: list[list[str]], delay_s: float = 1.5) -> list[tuple[int, str, str]]:
    """Start one child per entry of `extras` (its argv[3:]), all released at the same instant; (rc, out, err) each."""
    code = CHILD.format(repo=str(REPO), body=textwrap.indent(textwrap.dedent(body), "    "))
    start = time.time() + delay_s
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), repr(start), *extra], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for extra in extras]
    return [(p.wait(60), *p.communicate()) for p in procs]


def test_three_processes_open_a_new_store_at_once(tmp_path):
    body = """
    s = ClinicStore.open(path, training=False)
    s.close()
    """
    for trial in range(6):
        path = tmp_path / f"new-{trial}.sqlite3"
        for rc, out, err in _run_together(body, path, [[]] * 3):
            assert rc == 0, err
            assert out.strip() == "OK", (out, err)
        with ClinicStore.open(path, training=False) as s:
            assert s.schema_version == LATEST_VERSION
            conn = sqlite3.connect(path)
            assert conn.execute("SELECT count(*) FROM meta WHERE key = 'role'").fetchone()[0] == 1
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            conn.close()


def test_two_processes_create_the_same_pseudonym(tmp_path):
    path = tmp_path / "c.sqlite3"
    ClinicStore.open(path, training=False).close()
    body = """
    s = ClinicStore.open(path, training=False)
    try:
        s.create_patient("P-" + sys.argv[3])
    finally:
        s.close()
    """
    for trial in range(8):
        name = f"RACE{trial:03d}"
        outs = _run_together(body, path, [[name]] * 2, delay_s=1.0)
        for rc, _out, err in outs:
            assert rc == 0, err
            assert "Traceback" not in err
        lines = sorted(out.strip() for _, out, _ in outs)
        assert lines[0] == "OK", lines
        assert lines[1] == "OK" or lines[1].startswith(f"USER: A patient with pseudonym P-{name} already exists"), lines
    with ClinicStore.open(path, training=False) as s:
        for trial in range(8):
            assert s.find_patient(f"P-RACE{trial:03d}") is not None


@pytest.fixture()
def held_store(tmp_path):
    """A store whose write lock another process holds (as another program's long write would)."""
    path = tmp_path / "held.sqlite3"
    ClinicStore.open(path, training=True).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(
            """
            import sqlite3, sys, time
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute("BEGIN IMMEDIATE")
            print("held", flush=True)
            time.sleep(float(sys.argv[2]))
            c.execute("ROLLBACK")
            """), str(path), str(BUSY_TIMEOUT_MS / 1000 + 20)],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    yield path
    holder.kill()
    holder.wait()


@pytest.mark.slow
def test_a_write_to_a_held_store_is_a_sentence(held_store):
    with ClinicStore.open(held_store, training=True) as s:
        with pytest.raises(UserError, match="in use by another program") as info:
            s.create_patient("P-0042")
        assert "locked" not in str(info.value)
        assert s.find_patient("P-0042") is None


@pytest.mark.slow
def test_headless_session_on_a_held_store_says_so(held_store, tmp_path):
    r = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "session", "--simulate", "--scenario",
         str(REPO / "seeds" / "scenarios" / "combined-uneventful.toml"), "--record", str(tmp_path / "rec"),
         "--store", str(held_store)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "in use by another program" in r.stderr
    assert "internal error" not in r.stderr and "database is locked" not in r.stderr


def test_four_processes_write_at_once_and_the_trail_chain_verifies(store_url):
    """Four real processes write through ClinicStore at the same instant (patients, areas, MEDs: each its own
    transaction, interleaved with the others'): the trail's hash chain verifies, and no row nor its trail entry is
    lost."""
    from workstation.keys import trail_key
    from workstation.store import trail

    path = store_url  # an SQLite file, or a database of the run's PostgreSQL server: ONE chain either way
    ClinicStore.open(path, training=False).close()
    body = """
    from datetime import date
    s = ClinicStore.open(path, training=False)
    s.actor = "room-" + sys.argv[3]
    try:
        for i in range(12):
            p = s.create_patient(f"P-{sys.argv[3]}-{i:03d}")
            s.add_area(p.id, "arm", "upper_arm", "hypopigmented_scar", 4, "III")
            s.add_med(p.id, "UVB-308", 300, date.today())
    finally:
        s.close()
    """
    for rc, out, err in _run_together(body, path, [[str(room)] for room in range(4)]):
        assert rc == 0, err
        assert out.strip() == "OK", (out, err)
    with ClinicStore.open(path, training=False) as s:
        report = trail.verify(s._conn, trail_key())
        assert report.intact, report.problem
        for room in range(4):
            for i in range(12):
                p = s.find_patient(f"P-{room}-{i:03d}")
                assert p is not None and len(s.areas(p.id)) == 1 and len(s.meds(p.id)) == 1
        for table in ("patients", "areas", "med_measurements"):
            made = trail.entries(s._conn, table=table)
            assert len(made) == 48 and {e.action for e in made} == {"create"}
            assert {e.who for e in made} == {f"room-{room}" for room in range(4)}
        whole = trail.entries(s._conn)
        assert [e.id for e in whole] == list(range(1, len(whole) + 1))  # no id skipped


@pytest.mark.slow
def test_the_store_writes_again_once_the_other_program_lets_go(tmp_path):
    """After a write refused for a held lock, the same store's connection (SQLAlchemy's) is clean: the next write
    takes the lock and commits."""
    path = tmp_path / "t.sqlite3"
    with ClinicStore.open(path, training=True) as s:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(UserError, match="in use by another program"):
            s.create_patient("P-0042")
        other.execute("ROLLBACK")
        other.close()
        assert s.create_patient("P-0042").pseudonym == "P-0042"
    with ClinicStore.open(path, training=True) as s:
        assert s.find_patient("P-0042") is not None
