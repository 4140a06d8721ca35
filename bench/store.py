"""Store benchmark: N workstation processes (treatment rooms) planning and saving visits on one clinic store, on
SQLite and on PostgreSQL.

    python bench/store.py [--rooms 8] [--visits 200] [--patients-per-room 25] [--pace-s 0] [--pg-url URL]
                          [--engine both] [--json]

The store is seeded first (per room 25 patients under pseudonyms, with screening, an MED where the light protocol
wants one, one or two areas and a course under one of the factory protocols, started a year ago). Then every room,
its own process with its own store connection, released at the same instant, runs its visits through the visit
service's own functions, with no device: `plan_visit` (the dose engine, from what the store has committed),
`journal_start` (the session row 'in progress') and `journal_end` (each area's treatment as planned, then the row
closed 'completed'). Rooms work in pairs on the same patients in the same order, so two rooms often plan the same
course at the same moment: what stops the second is the store (a lease, a constraint, a version check), when it has
them. A visit's date is the course's next one (the last session's date plus the course's interval, or the first
date the dose engine allows).

By default each room starts its next visit as soon as the last one is saved (`--pace-s 0`): the store and the
machine at saturation, a stress no clinic makes (a room treats a patient every few minutes). With `--pace-s S` each
room starts a visit every S seconds on its own schedule (the rooms' schedules spread over S, so they are not in
lock step), or as soon as the last one is saved when it is late: latency at a chosen arrival rate, N / S visits per
second in all, which the JSON gives as `visits_per_s_offered` beside what was achieved.

Per visit, plan + save is timed on a monotonic clock (visits that were saved), and each write transaction of the
room's connection in three parts (TxTimer: the wait for the write lock, the statements, the commit with its flush).
A write that fails with an error other than the store's refusal in words is sent once more (again_once: a start
carries its idempotency key, an end writes totals). Afterwards the store is checked against what each room
believes: no lost session (every session a room reported saved is in the store, completed, with its treatments),
no doubled session (two sessions of one course on one date, or two light treatments of one area on one date), no
duplicate treatment row, no unacknowledged session (one in the store that no room reported saved or aborted), and
the audit trail verifies (chain, and the anchor the rooms left in the run's state folder).

With --json the last line is one JSON object: rooms, visits (per room), errors, lost_sessions, doubled_sessions,
duplicate_treatment_rows, unacknowledged_sessions, retried_writes, sqlite_p50_ms, sqlite_p99_ms, postgresql_p50_ms,
postgresql_p99_ms (plan + save per visit, null for an engine not run), and under `engines` each engine's counts
(saved, refused by the dose engine, refused by the store: a lease, a constraint or a stale plan; sessions in the
store by state), the lock / commit breakdown, trail_intact and, when it could not run, why. The exit status is 1
when a session was lost, doubled or unacknowledged, a visit failed with an error or the trail does not verify.

The PostgreSQL case opens the store with its URL (`--pg-url`, or a throw-away server started and removed here, with
fsync on as a clinic's server has it); SQLite with a `sqlite:///` URL to a temporary file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing as mp
import os
import queue
import statistics
import sys
import tempfile
import time
import traceback
from collections import Counter
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEVICE_MODEL = "UVB-308 excimer handpiece (emulated)"  # the emulated light's model (drivers/emulators/light.py)
COURSE_START = date.today() - timedelta(days=400)
# (protocol, lesion type, regions of its areas, MED in mJ/cm² or None): the factory protocols, each area on its own
# region; an MED where the light protocol starts from one (hypopigmented-scar-light: MED minus 50 mJ/cm²).
KINDS = (
    ("hypopigmented-scar-light", "hypopigmented_scar", ("upper_arm", "forearm"), 300.0),
    ("hypopigmented-atrophic-scar-combined", "hypopigmented_atrophic_scar", ("face",), None),
    ("atrophic-scar-needling", "atrophic_scar", ("back", "thighs"), None),
    ("striae-alba-light", "striae_alba", ("abdomen",), None),
)
SKIN_TYPES = ("II", "III", "IV")


def pseudonym(i: int) -> str:
    return f"BENCH-{i:04d}"


def seed(target: str, n_patients: int) -> list[int]:
    """Patients, screening, MEDs, areas and courses; returns the course ids in patient order."""
    from workstation.protocols import load_library
    from workstation.store import ClinicStore

    library = load_library()
    courses = []
    with ClinicStore.open(target, training=False) as store:
        store.actor = "bench-seed"
        for i in range(n_patients):
            protocol_id, lesion, regions, med = KINDS[i % len(KINDS)]
            p = store.create_patient(pseudonym(i))
            for item in library.tables.screening:
                store.add_screening_answer(p.id, item.id, False, COURSE_START, "bench-seed")
            if med is not None:
                store.add_med(p.id, DEVICE_MODEL, med, COURSE_START)
            skin = SKIN_TYPES[i % len(SKIN_TYPES)]
            areas = [store.add_area(p.id, f"{region}-1", region, lesion, 6.0, skin, distinct_place=True).id
                     for region in regions]
            courses.append(store.create_course(p.id, library.get(protocol_id), areas, COURSE_START).id)
    return courses


def course_for(room: int, k: int, courses: list[int], per_room: int) -> int:
    """Rooms 2g and 2g+1 take turns on the patients of groups 2g and 2g+1 in the same order (a room left without a
    partner works alone): two rooms reach the same course at about the same moment."""
    base = (room // 2) * 2
    group = min(base + k % 2, len(courses) // per_room - 1)
    return courses[group * per_room + (k // 2) % per_room]


def delivered(plan: Any) -> list:
    """What a visit that goes as planned delivers: each step's planned dose, depth, rate and passes."""
    from workstation.store import Treatment

    out = []
    for s in plan.execution_steps():
        area = int(s["area_id"])
        if s["modality"] == "light":
            out.append(Treatment(area, "light", dose_mj_cm2=s["target_dose_mj_cm2"]))
        else:
            out.append(Treatment(area, "needling", depth_mm=s["depth_mm"], stroke_rate_hz=s["stroke_rate_hz"],
                                 passes=s["passes"]))
    return out


@dataclass
class RoomResult:
    room: int
    times_ms: list[float] = field(default_factory=list)  # plan + save of each saved visit
    plan_ms: list[float] = field(default_factory=list)  # of which the plan (history read, dose engine)
    saved: list[tuple[int, int, str, int]] = field(default_factory=list)  # (session, course, date, treatments)
    refused_plan: int = 0  # the dose engine refused, or had nothing to treat
    refused_store: list[str] = field(default_factory=list)  # the store's sentence (start or save of treatment)
    errors: list[str] = field(default_factory=list)
    aborted: list[tuple[int, int, str]] = field(default_factory=list)  # (session, course, date) closed 'aborted'
    unknown: list[tuple[int | None, int, str]] = field(default_factory=list)  # a write that failed: outcome unknown
    retried: list[str] = field(default_factory=list)  # writes sent again after an error (again_once)
    cpu_s: float = 0.0  # the room process's CPU (user + system) over its visits
    lock_ms: list[float] = field(default_factory=list)  # of each saved visit's time: waiting for the write lock
    commit_ms: list[float] = field(default_factory=list)  # of each saved visit's time: its commits (the fsyncs)
    commits: list[int] = field(default_factory=list)  # write transactions of each saved visit
    late_ms: list[float] = field(default_factory=list)  # paced: how late each visit started after its schedule


class TxTimer:
    """Where a visit's write time goes: each `store.transaction` of the room's own connection timed in three parts,
    the wait for the write lock (SQLite's BEGIN IMMEDIATE; PostgreSQL's trail lock in set_writer), the statements,
    and the commit (the journal's fsync). Installed on the room's store; read and reset per visit."""

    def __init__(self, store: Any) -> None:
        self.lock_s = self.commit_s = 0.0
        self.commits = 0
        inner = store.transaction

        @contextmanager
        def timed(reason: str = ""):
            t0 = time.monotonic()
            with inner(reason) as c:
                t1 = time.monotonic()
                self.lock_s += t1 - t0
                yield c
                t2 = time.monotonic()
            self.commit_s += time.monotonic() - t2
            self.commits += 1

        store.transaction = timed

    def take(self) -> tuple[float, float, int]:
        """(lock wait ms, commit ms, commits) since the last take."""
        out = (self.lock_s * 1000.0, self.commit_s * 1000.0, self.commits)
        self.lock_s = self.commit_s = 0.0
        self.commits = 0
        return out


def course_lease(store, course_id: int, plan: Any) -> Any:
    """The course's lease for a start, as the visit service takes it (workstation.session.course_lease, issue 17).
    UserError in words when another room holds it or the plan is stale."""
    from workstation.session.course_lease import CourseLease

    return CourseLease.take(store, course_id, store.actor, plan_version=getattr(plan, "course_version", None),
                            room=store.actor, defer=True)


def one_visit(store, library, course_id: int, result: RoomResult, timer: TxTimer | None = None) -> None:
    from workstation.errors import UserError
    from workstation.session.journal import journal_end, journal_start
    from workstation.session.planning import plan_visit

    if timer is not None:
        timer.take()
    t0 = time.monotonic()
    with store.snapshot():  # the booking's reads and the plan's from one committed state (no device: no write)
        last = [r.session_date for r in store.history(course_id)]
        course = store.course(course_id)
        day = max(last) + timedelta(days=course.interval_days) if last else course.started_on
        plan = plan_visit(store, library, course_id, day, device_model=DEVICE_MODEL)
        if plan.refused and plan.refusal.first_allowed_date <= date.today():  # booked on the first date allowed
            day = plan.refusal.first_allowed_date
            plan = plan_visit(store, library, course_id, day, device_model=DEVICE_MODEL)
    treatments = delivered(plan) if not plan.refused else []
    planned_ms = (time.monotonic() - t0) * 1000.0
    if day > date.today() or not treatments:
        result.refused_plan += 1
        return
    try:
        lease = course_lease(store, course_id, plan)
    except UserError as exc:  # another room holds the course, or the plan is stale: said in words, nothing saved
        result.refused_store.append(str(exc))
        return
    try:
        session_id = again_once(lambda: journal_start(store, plan, day, device_model=DEVICE_MODEL, lease=lease),
                                result)
    except UserError as exc:  # the version check in the saving transaction: nothing saved
        lease.release()
        result.refused_store.append(str(exc))
        return
    except Exception:
        lease.release()
        result.unknown.append((None, course_id, day.isoformat()))  # a start that may have committed, not known
        raise
    try:
        again_once(lambda: journal_end(store, session_id, treatments, "completed", "", lease=lease), result)
    except UserError as exc:  # a constraint (one light session per area per day): the visit ends aborted
        store.close_session(session_id, "aborted", f"the store refused the treatment: {exc}")
        result.refused_store.append(str(exc))
        result.aborted.append((session_id, course_id, day.isoformat()))
        return
    except Exception:
        result.unknown.append((session_id, course_id, day.isoformat()))  # started, its end not known
        raise
    finally:
        lease.release()
    result.times_ms.append((time.monotonic() - t0) * 1000.0)
    result.plan_ms.append(planned_ms)
    if timer is not None:
        lock_ms, commit_ms, commits = timer.take()
        result.lock_ms.append(lock_ms)
        result.commit_ms.append(commit_ms)
        result.commits.append(commits)
    result.saved.append((session_id, course_id, day.isoformat(), len(treatments)))


def again_once(write: Any, result: RoomResult) -> Any:
    """A write sent once more after an error that is not the store's refusal in words (a lost connection, a commit
    whose acknowledgement never came): the start carries its idempotency key (journal_start) and the end writes
    totals, so sending it again can never double a session. The first error is counted (`retried`)."""
    from workstation.errors import UserError

    try:
        return write()
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - named in the figures, then sent again
        result.retried.append(f"{type(exc).__name__}: {exc}")
        return write()


def room_main(room: int, target: str, visits: int, courses: list[int], per_room: int, start_at: float,
              out: Any, pace_s: float = 0.0, rooms: int = 1) -> None:
    """One treatment room: its own process and store connection; waits for the common start, then its visits:
    back to back (`pace_s` 0), or one every `pace_s` seconds from its own offset (room / rooms of the pace)."""
    from workstation.protocols import load_library
    from workstation.store import ClinicStore

    result = RoomResult(room)
    try:
        library = load_library()
        with ClinicStore.open(target, training=False) as store:
            store.actor = f"room-{room + 1}"
            timer = TxTimer(store)
            while time.time() < start_at:
                time.sleep(0.001)
            cpu0 = time.process_time()
            first = time.monotonic() + pace_s * room / rooms
            for k in range(visits):
                if pace_s > 0:  # open loop: the visit's own start time, or now when the last one ran late
                    wait = first + k * pace_s - time.monotonic()
                    time.sleep(max(0.0, wait))
                    result.late_ms.append(max(0.0, -wait) * 1000.0)  # a backlog the plan + save times leave out
                try:
                    one_visit(store, library, course_for(room, k, courses, per_room), result, timer)
                except Exception as exc:  # noqa: BLE001 - counted and named; the room goes on
                    result.errors.append(f"{type(exc).__name__}: {exc}")
            result.cpu_s = time.process_time() - cpu0
    except Exception:  # noqa: BLE001 - the room could not work at all
        result.errors.append(traceback.format_exc(limit=3))
    out.put(dataclasses.asdict(result))  # plain data across the process boundary


def check_store(target: str, rooms: list[RoomResult], courses: list[int]) -> dict[str, Any]:
    """Lost and doubled sessions, duplicate treatment rows, and the trail's chain, read through the store."""
    from workstation.keys import trail_key
    from workstation.store import ClinicStore, trail, trail_anchor

    with ClinicStore.open(target, training=False, read_only=True) as store:
        history = {s.id: s for c in courses for s in store.history(c)}
        report = trail.verify(store._conn, trail_key(), anchor=trail_anchor.seen(store))  # as `trail verify` does
    lost = 0
    for r in rooms:
        for sid, course_id, day, n in r.saved:
            s = history.get(sid)
            if s is None or s.course_id != course_id or s.session_date.isoformat() != day or s.state != "completed" \
                    or len(s.treatments) != n:
                lost += 1
    # What each room believes against what the store holds, session by session: every session in the store must be
    # one a room was told it saved (completed) or aborted on the store's refusal; any other is unacknowledged (its
    # start or end committed while its room saw an error, or a room's bookkeeping missed it).
    told = Counter(sid for r in rooms for sid, *_ in r.saved) + Counter(sid for r in rooms for sid, *_ in r.aborted)
    aborted_wrong = sum(1 for r in rooms for sid, *_ in r.aborted
                        if sid not in history or history[sid].state != "aborted")
    live = [s for s in history.values() if s.state not in ("aborted",)]
    per_day = Counter((s.course_id, s.session_date) for s in live)
    light = Counter((t.area_id, s.session_date) for s in live for t in s.treatments if t.modality == "light")
    rows = Counter((s.id, t.area_id, t.modality) for s in history.values() for t in s.treatments)
    return {"lost_sessions": lost, "doubled_sessions": sum(n - 1 for n in per_day.values() if n > 1),
            "doubled_light_area_days": sum(n - 1 for n in light.values() if n > 1),
            "duplicate_treatment_rows": sum(n - 1 for n in rows.values() if n > 1),
            "unacknowledged_sessions": sum(1 for sid in history if sid not in told),
            "reported_twice": sum(n - 1 for n in told.values() if n > 1),
            "aborted_not_as_told": aborted_wrong,
            "sessions_in_store": len(history),
            "completed_in_store": sum(1 for s in history.values() if s.state == "completed"),
            "aborted_in_store": sum(1 for s in history.values() if s.state == "aborted"),
            "trail_intact": report.intact, "trail_rows": report.rows, "trail_problem": report.problem}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def run_engine(target: str, rooms: int, visits: int, per_room: int, pace_s: float = 0.0) -> dict[str, Any]:
    t0 = time.monotonic()
    courses = seed(target, rooms * per_room)
    seeded_s = time.monotonic() - t0
    ctx = mp.get_context("spawn")  # each room a fresh interpreter, as a workstation is
    out = ctx.Queue()
    start_at = time.time() + 2.0 + 0.5 * rooms  # every room has opened its store by then
    procs = [ctx.Process(target=room_main, args=(r, target, visits, courses, per_room, start_at, out, pace_s, rooms))
             for r in range(rooms)]
    for p in procs:
        p.start()
    got: dict[int, RoomResult] = {}
    while len(got) < rooms:
        try:
            r = RoomResult(**out.get(timeout=1.0))
            got[r.room] = r
        except queue.Empty:  # a room process that died without a word (killed, out of memory) counts as an error
            for room, p in enumerate(procs):
                if room not in got and p.exitcode not in (None, 0):
                    got[room] = RoomResult(room, errors=[f"room {room + 1} process ended with status {p.exitcode}"])
    results = [got[room] for room in range(rooms)]
    wall_s = time.time() - start_at
    for p in procs:
        p.join(30)
    times = [t for r in results for t in r.times_ms]
    plans = [t for r in results for t in r.plan_ms]
    saves = [t - p for r in results for t, p in zip(r.times_ms, r.plan_ms, strict=True)]
    locks = [t for r in results for t in r.lock_ms]
    commits = [t for r in results for t in r.commit_ms]
    n = [c for r in results for c in r.commits]
    checked = check_store(target, results, courses)
    errors = [e for r in results for e in r.errors]
    return {"seed_s": round(seeded_s, 1), "run_s": round(wall_s, 1), "saved": len(times),
            "visits_per_s_achieved": _round(rooms * visits / wall_s if wall_s > 0 else None),
            "refused_by_plan": sum(r.refused_plan for r in results),
            "refused_by_store": sum(len(r.refused_store) for r in results),
            "refusal_sentences": Counter(s for r in results for s in r.refused_store).most_common(3),
            "errors": len(errors), "error_samples": errors[:3],
            "aborted_by_store": sum(len(r.aborted) for r in results),
            "outcome_unknown": sum(len(r.unknown) for r in results),
            "retried_writes": sum(len(r.retried) for r in results),
            "retry_samples": [e for r in results for e in r.retried][:3],
            "p50_ms": _round(percentile(times, 50)), "p99_ms": _round(percentile(times, 99)),
            "max_ms": _round(max(times) if times else None),
            "cpu_ms_per_visit": _round(1000.0 * sum(r.cpu_s for r in results) / max(1, rooms * visits)),
            "plan_p50_ms": _round(percentile(plans, 50)), "plan_p99_ms": _round(percentile(plans, 99)),
            "save_p50_ms": _round(percentile(saves, 50)), "save_p99_ms": _round(percentile(saves, 99)),
            "lock_wait_p50_ms": _round(percentile(locks, 50)), "lock_wait_p99_ms": _round(percentile(locks, 99)),
            "commit_p50_ms": _round(percentile(commits, 50)), "commit_p99_ms": _round(percentile(commits, 99)),
            "commits_per_visit": _round(statistics.fmean(n) if n else None),
            "start_late_p99_ms": _round(percentile([t for r in results for t in r.late_ms], 99)), **checked}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


@contextmanager
def private_folders():
    """The run's own user folders (keys, settings, data): the bench never touches the workstation's own."""
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="cicatrix-bench-store-") as tmp:
        for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
            os.environ[var] = str(Path(tmp) / var.lower())
        try:
            yield Path(tmp)
        finally:
            os.environ.clear()
            os.environ.update(saved)


def main(argv: list[str] | None = None) -> int:
    from workstation.errors import UserError

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rooms", type=int, default=8, help="workstation processes (default 8)")
    ap.add_argument("--visits", type=int, default=200, help="visits each room plans and saves (default 200)")
    ap.add_argument("--patients-per-room", type=int, default=25, help="patients seeded per room (default 25)")
    ap.add_argument("--pg-url", help="postgresql+psycopg://… of an EMPTY database (default: a throw-away server)")
    ap.add_argument("--engine", choices=("both", "sqlite", "postgresql"), default="both")
    ap.add_argument("--pace-s", type=float, default=0.0,
                    help="seconds between one room's visit starts (default 0: back to back, the saturation case)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.rooms < 1 or args.visits < 1 or args.patients_per_room < 1:
        ap.error("--rooms, --visits and --patients-per-room must be at least 1")
    if not (math.isfinite(args.pace_s) and 0 <= args.pace_s <= 3600):
        ap.error(f"--pace-s is seconds between a room's visits, 0 to 3600, not {args.pace_s}")
    figures: dict[str, dict[str, Any]] = {}
    load_before = os.getloadavg()  # the machine's own load: the rooms then add theirs
    try:
        with private_folders() as tmp, ExitStack() as stack:
            if args.engine in ("both", "sqlite"):
                path = tmp / "clinic.sqlite3"
                figures["sqlite"] = run_engine(f"sqlite:///{path}", args.rooms, args.visits, args.patients_per_room,
                                               args.pace_s)
            if args.engine in ("both", "postgresql"):
                url = args.pg_url
                if url is None:
                    from workstation.store.pgserver import ThrowawayPostgres

                    server = stack.enter_context(ThrowawayPostgres(durable=True))  # fsync on: a clinic's server
                    url = server.create_database("bench_store")
                figures["postgresql"] = run_engine(url, args.rooms, args.visits, args.patients_per_room, args.pace_s)
    except UserError as exc:  # no server programs, a database that is not empty, a store that does not open
        print(f"bench/store.py: {exc}", file=sys.stderr)
        return 2
    summary = report(figures, args, load_before)
    if args.json:
        print(json.dumps(summary))
    bad = any(f["lost_sessions"] or f["doubled_sessions"] or f["doubled_light_area_days"] or f["errors"]
              or f["unacknowledged_sessions"] or f["reported_twice"] or f["aborted_not_as_told"]
              or f["duplicate_treatment_rows"] or not f["trail_intact"] for f in figures.values())
    return 1 if bad else 0


def report(figures: dict[str, dict[str, Any]], args: argparse.Namespace,
           load_before: tuple[float, float, float]) -> dict[str, Any]:
    pace = f"a visit every {args.pace_s:g} s per room" if args.pace_s > 0 else "visits back to back"
    print(f"store benchmark: {args.rooms} rooms × {args.visits} visits ({pace}), {args.patients_per_room} patients per room; "
          f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (1 min)")
    cols = ("saved", "visits_per_s_achieved", "refused_by_plan", "refused_by_store", "errors", "p50_ms", "p99_ms", "max_ms", "plan_p50_ms",
            "plan_p99_ms", "save_p50_ms", "save_p99_ms", "lock_wait_p50_ms", "lock_wait_p99_ms",
            "commit_p50_ms", "commit_p99_ms", "commits_per_visit", "cpu_ms_per_visit", "start_late_p99_ms", "lost_sessions",
            "doubled_sessions", "doubled_light_area_days", "duplicate_treatment_rows", "unacknowledged_sessions",
            "reported_twice", "aborted_not_as_told", "aborted_by_store", "outcome_unknown", "retried_writes",
            "sessions_in_store", "completed_in_store", "trail_intact")
    print(f"{'':24}" + "".join(f"{name:>14}" for name in figures))
    for col in cols:
        cells = [str(f[col]) for f in figures.values()]
        print(f"{col:24}" + "".join(f"{c:>14}" for c in cells))
    for name, f in figures.items():
        print(f"{name}: seeded in {f['seed_s']} s, rooms ran {f['run_s']} s, {f['sessions_in_store']} sessions in "
              f"the store, trail {f['trail_rows']} rows" + ("" if f["trail_intact"] else f" BROKEN: {f['trail_problem']}"))
        for sentence, n in f["refusal_sentences"]:
            print(f"  refused by the store ({n}×): {sentence}")
        for e in f["error_samples"]:
            print(f"  error: {e}")
        for e in f["retry_samples"]:
            print(f"  sent again after: {e}")
    ran = figures
    summary: dict[str, Any] = {
        "rooms": args.rooms, "visits": args.visits, "patients": args.rooms * args.patients_per_room,
        "pace_s": args.pace_s, "visits_per_s_offered": _round(args.rooms / args.pace_s) if args.pace_s > 0 else None,
        "errors": sum(f["errors"] for f in ran.values()),
        "lost_sessions": sum(f["lost_sessions"] for f in ran.values()),
        "doubled_sessions": sum(f["doubled_sessions"] for f in ran.values()),
        "duplicate_treatment_rows": sum(f["duplicate_treatment_rows"] for f in ran.values()),
        "unacknowledged_sessions": sum(f["unacknowledged_sessions"] + f["reported_twice"] + f["aborted_not_as_told"]
                                       for f in ran.values()),
        "retried_writes": sum(f["retried_writes"] for f in ran.values()),
        "load_average_before": round(load_before[0], 2), "load_average_after": round(os.getloadavg()[0], 2)}
    for name in ("sqlite", "postgresql"):
        f = figures.get(name, {})
        summary[f"{name}_p50_ms"] = f.get("p50_ms")
        summary[f"{name}_p99_ms"] = f.get("p99_ms")
    summary["engines"] = {n: {k: v for k, v in f.items() if k not in ("refusal_sentences", "error_samples",
                                                                         "retry_samples")}
                          for n, f in figures.items()}
    return summary


if __name__ == "__main__":
    sys.exit(main())
