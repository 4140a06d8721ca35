"""Issue 17's store speed without a weaker guarantee: a visit is two commits (the course's lease written in the
session start's transaction, released in its end's), exactly one of two racing rooms still wins, a start sent again
after its commit went through is the same session (its idempotency key), and bench/store.py counts from the store
what each room believes it saved. On both engines (`store_url`), with real processes for the race."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
from helpers_race import lease_course, race_two_rooms

from workstation.errors import UserError
from workstation.session.course_lease import CourseLease
from workstation.session.journal import journal_end, journal_start
from workstation.store import ClinicStore, Treatment
from workstation.store.db import OperationalError
from workstation.store.leases import LeaseRefused

REPO = Path(__file__).resolve().parents[1]
TODAY = date.today()


@dataclass
class Plan:
    """The two things journal_start reads of a dose-engine SessionPlan: its course and its dictionary (the version
    the plan was computed from, its areas)."""

    course_id: int
    course_version: int
    areas: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"course_version": self.course_version, "areas": self.areas}


_course = lease_course


@pytest.fixture()
def course(store_url):
    with ClinicStore.open(store_url, training=True) as store:
        c, area = _course(store)
        yield store, c, area


@contextmanager
def counted_commits(store: ClinicStore):
    """Count the write transactions `store` commits inside the block (every write goes through store.transaction)."""
    inner = store.transaction
    n = [0]

    @contextmanager
    def counting(reason: str = ""):
        with inner(reason) as c:
            yield c
        n[0] += 1

    store.transaction = counting
    try:
        yield n
    finally:
        del store.transaction


def test_a_visit_is_two_commits_and_its_end_releases_the_lease(course):
    store, c, area = course
    with counted_commits(store) as commits:
        lease = CourseLease.take(store, c.id, "dr-a", room="room 1", plan_version=store.course_version(c.id),
                                 defer=True)
        assert commits[0] == 0 and store.lease(c.id) is None  # checked, not written yet
        sid = journal_start(store, Plan(c.id, store.course_version(c.id)), TODAY, device_model=None, lease=lease)
        assert commits[0] == 1
        held = store.lease(c.id)
        assert (held.room, held.holder, held.released_at) == ("room 1", lease.lease.holder, None)
        assert store.session_state(sid)["room"] == "room 1"  # the session names the lease's room: same transaction
        journal_end(store, sid, [Treatment(area.id, "light", dose_mj_cm2=120.0)], "completed", "", lease=lease)
        assert commits[0] == 2 and store.lease(c.id).released_at is not None
        lease.release()  # every ending calls it: nothing left to write
        assert commits[0] == 2
    assert store.session_state(sid)["state"] == "completed"


def test_two_deferred_starts_of_one_course_exactly_one_is_saved(course):
    store, c, _area = course
    with ClinicStore.open(store.path, training=True) as other:
        v = store.course_version(c.id)
        mine = CourseLease.take(store, c.id, "dr-a", room="room 1", plan_version=v, defer=True)
        theirs = CourseLease.take(other, c.id, "dr-b", room="room 2", plan_version=v, defer=True)  # both checked
        sid = journal_start(other, Plan(c.id, v), TODAY, device_model=None, lease=theirs)
        with pytest.raises(LeaseRefused, match="P-0042 is being treated in room 2 by dr-b since"):
            journal_start(store, Plan(c.id, v), TODAY, device_model=None, lease=mine)
        mine.release()
        assert [s.id for s in store.history(c.id)] == [sid]  # the refused start wrote nothing
        assert store.lease(c.id).room == "room 2" and store.lease(c.id).released_at is None
        theirs.release()
    assert store.lease(c.id).released_at is not None


def test_a_refused_end_writes_nothing_and_keeps_the_lease_until_release(course):
    store, c, area = course
    first = store.add_session(c.id, TODAY, state="in_progress")
    store.end_session(first, [Treatment(area.id, "light", dose_mj_cm2=100.0)], "completed")  # today's light
    lease = CourseLease.take(store, c.id, "dr-a", room="room 1", defer=True)
    sid = journal_start(store, Plan(c.id, store.course_version(c.id)), TODAY, device_model=None, lease=lease)
    with pytest.raises(UserError, match="already had a light session on"):
        journal_end(store, sid, [Treatment(area.id, "light", dose_mj_cm2=100.0)], "completed", "", lease=lease)
    assert store.session_state(sid)["state"] == "in_progress" and store.lease(c.id).released_at is None
    store.close_session(sid, "aborted", "the store refused the treatment")
    lease.release()
    assert store.lease(c.id).released_at is not None


# --- a start sent again: its idempotency key -------------------------------------------------------------------------
def test_a_start_sent_again_after_its_commit_is_the_same_session(course):
    """The client saw an error although the start's commit went through (a lost acknowledgement): sending the same
    start again (same lease, so the same key) returns the session saved, with no second row and no second version
    bump; the lease stays this start's."""
    store, c, _area = course
    v = store.course_version(c.id)
    lease = CourseLease.take(store, c.id, "dr-a", room="room 1", plan_version=v, defer=True)
    try:
        sid = journal_start(store, Plan(c.id, v), TODAY, device_model=None, lease=lease)
        again = journal_start(store, Plan(c.id, v), TODAY, device_model=None, lease=lease)  # a stale plan by now
        assert again == sid
        assert [s.id for s in store.history(c.id)] == [sid] and store.course_version(c.id) == v + 1
        assert store.lease(c.id).holder == lease.lease.holder
    finally:
        lease.release()
    with pytest.raises(UserError, match="The plan was computed before"):  # a NEW start with the old plan is stale
        journal_start(store, Plan(c.id, v), TODAY, device_model=None)
    with pytest.raises(ValueError, match="another course"):
        store.add_session(_course(store, "P-0043")[0].id, TODAY, start_key=lease.lease.holder)


def _bench():
    spec = importlib.util.spec_from_file_location("bench_store_h17p", REPO / "bench" / "store.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_bench_sends_a_start_again_after_a_lost_acknowledgement_and_counts_it_once(store_url):
    """bench/store.py's again_once around a start whose commit went through and whose client then saw the
    connection's error: one session, reported saved once; the store's checks find nothing unacknowledged."""
    bench = _bench()
    [course_id] = bench.seed(store_url, 1)
    with ClinicStore.open(store_url, training=False) as store:
        v = store.course_version(course_id)
        lease = CourseLease.take(store, course_id, "room-1", room="room-1", plan_version=v, defer=True)
        result = bench.RoomResult(0)
        tries = []

        def start_then_lose_the_ack() -> int:
            sid = journal_start(store, Plan(course_id, v), TODAY - timedelta(days=1), device_model=None, lease=lease)
            tries.append(sid)
            if len(tries) == 1:
                raise OperationalError("COMMIT", {}, ConnectionResetError("server closed the connection"))
            return sid

        sid = bench.again_once(start_then_lose_the_ack, result)
        journal_end(store, sid, [], "completed", "", lease=lease)
        lease.release()
    assert tries == [sid, sid] and len(result.retried) == 1 and "OperationalError" in result.retried[0]
    result.saved.append((sid, course_id, (TODAY - timedelta(days=1)).isoformat(), 0))
    found = bench.check_store(store_url, [result], [course_id])
    assert (found["sessions_in_store"], found["unacknowledged_sessions"], found["doubled_sessions"],
            found["lost_sessions"]) == (1, 0, 0, 0)


def test_the_bench_names_a_session_no_room_acknowledged(tmp_path):
    """A session in the store that no room reported saved or aborted (its commit went through while its room saw
    an error and gave up) is counted unacknowledged, apart from lost and doubled, and a room's aborted visit is
    checked against the store too."""
    bench = _bench()
    path = str(tmp_path / "s.sqlite3")
    courses = bench.seed(path, 3)
    day = TODAY - timedelta(days=30)
    with ClinicStore.open(path, training=False) as store:
        told = store.add_session(courses[0], day, state="in_progress")
        store.close_session(told, "completed")
        aborted = store.add_session(courses[1], day, state="in_progress")
        store.close_session(aborted, "aborted", "the store refused the treatment")
        silent = store.add_session(courses[2], day, state="in_progress")
    room = bench.RoomResult(0, saved=[(told, courses[0], day.isoformat(), 0)],
                            aborted=[(aborted, courses[1], day.isoformat())])
    found = bench.check_store(path, [room], courses)
    assert (found["unacknowledged_sessions"], found["lost_sessions"], found["doubled_sessions"],
            found["aborted_not_as_told"], found["sessions_in_store"]) == (1, 0, 0, 0, 3)
    room.aborted.append((told, courses[0], day.isoformat()))  # a room that believes the completed one aborted
    found = bench.check_store(path, [room], courses)
    assert found["aborted_not_as_told"] == 1 and found["reported_twice"] == 1
    assert silent not in {s for s, *_ in room.saved + room.aborted}


# --- real processes racing the deferred lease --------------------------------------------------------------------------
RACER = textwrap.dedent("""
    import json, sys, time
    from datetime import date
    sys.path.insert(0, {repo!r})
    from workstation.session.course_lease import CourseLease
    from workstation.session.journal import journal_end, journal_start
    from workstation.store import ClinicStore
    from workstation.errors import UserError

    class Plan:
        def __init__(self, course_id, v):
            self.course_id, self.course_version = course_id, v
        def to_dict(self):
            return {{"course_version": self.course_version, "areas": []}}

    path, start, room, courses = sys.argv[1], float(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
    won, refused = [], []
    with ClinicStore.open(path, training=True) as store:
        for i, course in enumerate(courses):
            v = store.course_version(course)
            while time.time() < start + i * {step}:
                time.sleep(0.0002)
            try:
                lease = CourseLease.take(store, course, "dr-" + room[-1], room=room, plan_version=v, defer=True)
            except UserError as exc:
                refused.append(str(exc))
                continue
            try:
                sid = journal_start(store, Plan(course, v), date.today(), device_model=None, lease=lease)
                won.append(i)  # its session runs on: the lease stays held (renewed until the process ends)
            except UserError as exc:
                refused.append(str(exc))
                lease.release()
    print(json.dumps({{"won": won, "refused": refused}}))
""")


def test_two_processes_start_the_same_course_at_once_with_deferred_leases_exactly_one_wins(store_url):
    with ClinicStore.open(store_url, training=True) as store:
        courses = [_course(store, f"P-{i:04d}")[0].id for i in range(12)]
    code = RACER.format(repo=str(REPO), step=0.15)
    results = race_two_rooms(code, store_url, courses)
    won = [set(r["won"]) for r in results]
    assert won[0] | won[1] == set(range(12)) and not won[0] & won[1]  # exactly one session per course
    for r, other in zip(results, ("room 2", "room 1"), strict=True):  # the loser is told who, or that it must re-plan
        assert all(f"is being treated in {other}" in s or "The plan was computed before" in s for s in r["refused"])
    with ClinicStore.open(store_url, training=True) as store:
        for i, cid in enumerate(courses):
            [s] = store.history(cid)
            assert store.session_state(s.id)["room"] == ("room 1" if i in won[0] else "room 2")
