"""The store's speed work (issue 17, docs/benchmarks.md "Store"): a plan reads one committed state (a snapshot, on
both engines) and no write can start inside it; a course's history costs three statements however many sessions it
has; a write that waits for SQLite's write lock gets it once the other writer commits, and the connection's busy
timeout is the same afterwards. Figures live in bench/store.py, never here."""

from __future__ import annotations

import sqlite3
import threading
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.conftest import sqlite_only
from workstation.protocols import load_library
from workstation.store import ClinicStore, Treatment
from workstation.store.connection import BUSY_TIMEOUT_MS

TODAY = date.today()


def _course(store: ClinicStore, pseudonym: str = "P-0042") -> int:
    p = store.create_patient(pseudonym)
    area = store.add_area(p.id, "left cheek", "face", "hypopigmented_scar", 3.5, "III")
    return store.create_course(p.id, load_library().get("hypopigmented-scar-light"), [area.id],
                               TODAY - timedelta(days=60)).id


def _session(store: ClinicStore, course_id: int, day: date) -> int:
    sid = store.add_session(course_id, day, state="in_progress")
    area = store.course(course_id).area_ids[0]
    store.end_session(sid, [Treatment(area, "light", dose_mj_cm2=100.0)], "completed")
    return sid


def test_a_snapshot_reads_one_committed_state(store_url):
    with ClinicStore.open(store_url, training=True) as a, ClinicStore.open(store_url, training=True) as b:
        cid = _course(a)
        _session(a, cid, TODAY - timedelta(days=30))
        with a.snapshot():
            before, version = a.history(cid), a.course_version(cid)
            _session(b, cid, TODAY - timedelta(days=20))  # another room saves meanwhile: not seen inside
            assert a.history(cid) == before and a.course_version(cid) == version
        assert len(a.history(cid)) == len(before) + 1 and a.course_version(cid) > version


def test_no_write_starts_inside_a_snapshot(store_url):
    with ClinicStore.open(store_url, training=True) as store:
        with store.snapshot(), pytest.raises(RuntimeError, match="read snapshot"):
            store.create_patient("P-0001")
        assert store.find_patient("P-0001") is None  # nothing was written
        store.create_patient("P-0001")  # and the store writes again once the snapshot is over
        assert store.find_patient("P-0001") is not None


@sqlite_only
def test_a_history_is_three_statements_however_long(store_url):
    with ClinicStore.open(store_url, training=True) as store:
        cid = _course(store)
        counts = []
        for n in (1, 5):
            while len(store.history(cid)) < n:
                _session(store, cid, TODAY - timedelta(days=50 - 7 * len(store.history(cid))))
            statements: list[str] = []
            store._conn.raw.set_trace_callback(statements.append)
            assert len(store.history(cid)) == n
            store._conn.raw.set_trace_callback(None)
            counts.append(sum(sql.startswith("SELECT") for sql in statements))
        assert counts == [3, 3]


@sqlite_only
def test_a_waiting_writer_gets_the_lock_when_the_other_commits(store_url):
    path = Path(store_url)
    with ClinicStore.open(path, training=True) as store:
        store.create_patient("P-0001")
        locked, done = threading.Event(), threading.Event()

        def other_writer() -> None:  # another program holding SQLite's write lock for a moment
            raw = sqlite3.connect(path, isolation_level=None)
            raw.execute("BEGIN IMMEDIATE")
            locked.set()
            done.wait(0.3)
            raw.execute("COMMIT")
            raw.close()

        t = threading.Thread(target=other_writer)
        t.start()
        assert locked.wait(10)
        store.create_patient("P-0002")  # waits for the lock, then writes
        done.set()
        t.join()
        assert store.find_patient("P-0002") is not None
        assert store._conn.raw.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
