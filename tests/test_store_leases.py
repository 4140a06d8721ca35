"""Rooms that cannot collide (issue 17): the course's lease (taken by exactly one of two real processes, expired or
taken over after a crash, named in a sentence), one light session per area per day (a database constraint), and the
course's version refusing a stale plan. Through the ClinicStore API only (so they can run on any engine), with real
processes, and through the window."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from helpers_load import run_until_killed
from helpers_race import lease_course, race_two_rooms

from workstation.errors import UserError
from workstation.session.course_lease import CourseLease
from workstation.session.journal import close_crashed_sessions, process_token
from workstation.store import ClinicStore, Identity, Treatment
from workstation.store.leases import CRASH_TIMEOUT_S, LeaseRefused

REPO = Path(__file__).resolve().parents[1]
TODAY = date.today()


_course = lease_course


@pytest.fixture()
def course(store_url):
    with ClinicStore.open(store_url, training=True) as store:
        c, area = _course(store, identity=Identity("Lindqvist", "Maja", date(1980, 2, 3)))
        yield store, c, area


# --- the lease ------------------------------------------------------------------------------------------------------
def test_a_held_lease_refuses_another_room_in_words_and_is_free_once_released(course):
    store, c, _a = course
    lease, replaced = store.take_lease(c.id, room="room 2", account="dr-a", process=process_token())
    assert replaced is None and lease.room == "room 2" and lease.released_at is None
    with pytest.raises(LeaseRefused) as refused:
        store.take_lease(c.id, room="room 1", account="dr-b", process=process_token())
    said = str(refused.value)
    since = datetime.fromisoformat(lease.started_at).astimezone().strftime("%H:%M")
    assert said.startswith(f"P-0042 is being treated in room 2 by dr-a since {since};")
    assert "Lindqvist" not in said and "Maja" not in said  # the pseudonym only
    assert f"{CRASH_TIMEOUT_S / 60:g} minutes" in said  # and what to do
    assert store.lease(c.id).holder == lease.holder  # the refused take changed nothing
    assert store.release_lease(c.id, lease.holder) and not store.release_lease(c.id, lease.holder)
    again, _ = store.take_lease(c.id, room="room 1", account="dr-b", process=process_token())
    assert again.room == "room 1" and store.lease(c.id).released_at is None


def test_a_lease_not_renewed_within_the_crash_timeout_is_taken_over(course):
    store, c, _a = course
    now = datetime.now(UTC)
    stale = now - timedelta(seconds=CRASH_TIMEOUT_S + 5)
    # another host's start, alive as far as anyone here can tell, renewed 30 s ago: held
    recent, _ = store.take_lease(c.id, room="room 2", account="dr-a", process="4242:1", host="room2-pc",
                                 now=now - timedelta(seconds=30))
    assert store.live_lease(c.id) is not None
    with pytest.raises(LeaseRefused):
        store.take_lease(c.id, room="room 1", account="dr-b", process=process_token(), now=now)
    assert store.renew_lease(c.id, recent.holder, now=stale)  # its last sign of life was long ago
    assert store.live_lease(c.id) is None
    mine, replaced = store.take_lease(c.id, room="room 1", account="dr-b", process=process_token(), now=now)
    assert replaced is not None and replaced.holder == recent.holder and mine.room == "room 1"
    assert not store.renew_lease(c.id, recent.holder)  # the old holder learns it lost the lease
    assert store.renew_lease(c.id, mine.holder)


def test_a_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(course):
    store, c, _a = course
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    dead = process_token(proc.pid)
    proc.wait()
    store.take_lease(c.id, room="room 2", account="dr-a", process=dead)
    _mine, replaced = store.take_lease(c.id, room="room 1", account="dr-b", process=process_token())
    assert replaced is not None and replaced.process == dead


def test_the_renewal_thread_keeps_the_lease_and_notices_a_takeover(course):
    store, c, _a = course
    held = CourseLease.take(store, c.id, "dr-a", room="room 2", renew_interval_s=0.05)
    try:
        first = held.lease.renewed_at
        deadline = time.monotonic() + 10
        while store.lease(c.id).renewed_at == first and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.lease(c.id).renewed_at > first
        later = datetime.now(UTC) + timedelta(seconds=CRASH_TIMEOUT_S + 5)  # as if this process had frozen
        store.take_lease(c.id, room="room 1", account="dr-b", process=process_token(), now=later)
        deadline = time.monotonic() + 10
        while not held.lost and time.monotonic() < deadline:
            time.sleep(0.02)
        assert held.lost
    finally:
        held.release()
    assert store.lease(c.id).room == "room 1" and store.lease(c.id).released_at is None  # not released by the loser


# A child that waits for a common start instant, then tries to take each of N courses' leases in turn (round i at
# start + i * STEP_S); it prints one JSON line: the rounds it won and the sentences it was refused with.
RACER = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, {repo!r})
    from workstation.session.journal import process_token
    from workstation.store import ClinicStore
    from workstation.store.leases import LeaseRefused
    path, start, room, courses = sys.argv[1], float(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
    won, refused = [], []
    with ClinicStore.open(path, training=True) as store:
        for i, course in enumerate(courses):
            while time.time() < start + i * {step}:
                time.sleep(0.0002)
            try:
                store.take_lease(course, room=room, account="dr-" + room[-1], process=process_token())
                won.append(i)
            except LeaseRefused as exc:
                refused.append(str(exc))
    print(json.dumps({{"won": won, "refused": refused}}))
""")


def test_two_processes_start_the_same_course_at_once_exactly_one_wins_20_times(store_url):
    path = store_url
    with ClinicStore.open(path, training=True) as store:
        courses = [_course(store, f"P-{i:04d}")[0].id for i in range(20)]
    code = RACER.format(repo=str(REPO), step=0.15)
    results = race_two_rooms(code, path, courses)
    won = [set(r["won"]) for r in results]
    assert won[0] | won[1] == set(range(20)) and not won[0] & won[1]  # exactly one winner per course
    for r, other in zip(results, ("room 2", "room 1"), strict=True):
        assert all(f"is being treated in {other} by dr-{other[-1]} since" in s for s in r["refused"])
    with ClinicStore.open(path, training=True) as store:
        for i, cid in enumerate(courses):
            assert store.lease(cid).room == ("room 1" if i in won[0] else "room 2")


HOLDER = textwrap.dedent("""
    import sys, time
    from datetime import date
    sys.path.insert(0, {repo!r})
    from workstation.session.course_lease import CourseLease
    from workstation.session.journal import process_token
    from workstation.store import ClinicStore, Treatment
    path, course, area = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    store = ClinicStore.open(path, training=True)
    lease = CourseLease.take(store, course, "dr-a", room="room 2", plan_version=store.course_version(course))
    sid = store.add_session(course, date.today(), state="in_progress", process=process_token())
    store.journal_treatment(sid, Treatment(area, "light", dose_mj_cm2=94.5))  # a step interrupted by the crash
    print("treating", sid, flush=True)
    time.sleep(600)
""")


def test_a_killed_room_s_lease_is_taken_over_and_its_session_closed_as_crashed(course):
    store, c, area = course
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(repo=str(REPO)), str(store.path), str(c.id),
                               str(area.id)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = holder.stdout.readline()
        assert line.startswith("treating"), holder.stderr.read() if holder.poll() is not None else line
        sid = int(line.split()[1])
        with pytest.raises(LeaseRefused, match="P-0042 is being treated in room 2 by dr-a since"):
            CourseLease.take(store, c.id, "dr-b", room="room 1")
        assert close_crashed_sessions(store) == []  # its process is alive: the session is left alone
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.stdout.close()
        holder.stderr.close()
    assert store.session_state(sid)["state"] == "in_progress" and store.session_state(sid)["room"] == "room 2"
    v = store.course_version(c.id)  # a plan made while room 2's session ran: it counts that session's journal only
    with pytest.raises(UserError, match=rf"^Session 1 of the course \(record no\. {sid}\), in room 2, was interrupted "
                                        r"by a crash; .*"
                                        r"Nothing was started: plan the visit again \(re-plan\)"):
        CourseLease.take(store, c.id, "dr-b", room="room 1", plan_version=v)  # the next start takes it over...
    state = store.session_state(sid)
    assert (state["state"], state["outcome_note"]) == (  # ...closes it, with no recording claimed (it had none)
        "crashed", "interrupted by a crash; it had no recording (the program stopped before its recorder opened), so "
        "it is closed with the doses the journal shows: 94.5 mJ/cm² of light on left cheek")
    assert store.lease(c.id).room == "room 1" and store.lease(c.id).released_at is not None  # and lets go
    mine = CourseLease.take(store, c.id, "dr-b", room="room 1", plan_version=store.course_version(c.id))  # re-planned
    try:
        [crashed] = store.history(c.id)
        assert crashed.treatment(area.id, "light").dose_mj_cm2 == 94.5  # as the journal had it
        # the course continues in room 1 (a needling session: the area's light today is already recorded)
        nxt = store.add_session(c.id, TODAY, state="in_progress", process=process_token(),
                                plan={"course_version": store.course_version(c.id), "areas": []})
        store.journal_treatment(nxt, Treatment(area.id, "needling", depth_mm=1.0, stroke_rate_hz=100.0, passes=2))
        assert store.session_state(nxt)["room"] == "room 1"
    finally:
        mine.release()
    assert store.lease(c.id).released_at is not None


def test_another_host_s_running_session_is_not_closed_as_crashed_here(course):
    store, c, _a = course
    store.take_lease(c.id, room="room 2", account="dr-a", process="777777:1", host="room2-pc")
    sid = store.add_session(c.id, TODAY, state="in_progress", process="777777:1")  # a pid unknown here
    assert close_crashed_sessions(store) == [] and store.session_state(sid)["state"] == "in_progress"


# --- one light session per area per day --------------------------------------------------------------------------
def test_a_second_light_session_on_an_area_the_same_day_is_refused_by_the_store(course):
    store, c, area = course
    first = store.add_session(c.id, TODAY, state="in_progress")
    store.journal_treatment(first, Treatment(area.id, "light", dose_mj_cm2=94.5))
    store.journal_treatment(first, Treatment(area.id, "light", dose_mj_cm2=260.0))  # a resumed step: same session
    second = store.add_session(c.id, TODAY)
    for write in (store.add_treatment, store.journal_treatment):  # with or without the visit service's journal
        with pytest.raises(UserError) as refused:
            write(second, Treatment(area.id, "light", dose_mj_cm2=100.0))
        assert str(refused.value) == (
            f"Area left cheek of P-0042 already had a light session on {TODAY.isoformat()} (session 1 of the course (record no. {first})); a "
            "second light session on the same area on the same day is refused. Nothing was saved for this area; "
            "plan it for another day.")
    store.add_treatment(second, Treatment(area.id, "needling", depth_mm=1.0, stroke_rate_hz=100.0, passes=2))
    other_day = store.add_session(c.id, TODAY - timedelta(days=14))
    store.add_treatment(other_day, Treatment(area.id, "light", dose_mj_cm2=100.0))
    by_id = {s.id: s for s in store.history(c.id)}
    assert by_id[first].treatment(area.id, "light").dose_mj_cm2 == 260.0
    assert by_id[second].treatment(area.id, "light") is None


def test_moving_a_session_s_date_cannot_put_two_light_sessions_on_an_area_on_one_day(course):
    """From the fresh tester of issue 17: in one transaction around the program, a session's date was moved away, a
    second light row written for the day, and the date moved back: two light sessions on one area on one day. The
    session's light rows now follow its date, so the unique index refuses the move back."""
    from workstation.store.db import IntegrityError

    store, c, area = course
    first = store.add_session(c.id, TODAY, state="in_progress")
    store.journal_treatment(first, Treatment(area.id, "light", dose_mj_cm2=82.2))
    second = store.add_session(c.id, TODAY)
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    with pytest.raises((IntegrityError, UserError)):
        with store.transaction("test: around the program") as t:
            t.execute("UPDATE sessions SET session_date = ? WHERE id = ?", (yesterday, first))
            t.execute("INSERT INTO treatments (session_id, area_id, modality, dose_mj_cm2, light_on) "
                      "VALUES (?, ?, 'light', 82.2, ?)", (second, area.id, TODAY.isoformat()))
            t.execute("UPDATE sessions SET session_date = ? WHERE id = ?", (TODAY.isoformat(), first))
    by_id = {s.id: s for s in store.history(c.id)}  # the whole transaction was refused
    assert by_id[first].session_date == TODAY and by_id[second].treatment(area.id, "light") is None
    with store.transaction("test: a date corrected") as t:  # a date moved alone carries its light row with it
        t.execute("UPDATE sessions SET session_date = ? WHERE id = ?", (yesterday, first))
    row = store._conn.execute("SELECT light_on FROM treatments WHERE session_id = ?", (first,)).fetchone()
    assert row[0] == yesterday


# --- the course's version against a stale plan ------------------------------------------------------------------
def test_a_save_based_on_a_stale_plan_is_refused_and_writes_nothing(course):
    store, c, _a = course
    v = store.course_version(c.id)
    lease, _ = store.take_lease(c.id, room="room 2", account="dr-a", process=process_token())
    saved = store.add_session(c.id, TODAY, plan={"course_version": v, "areas": []}, state="in_progress",
                              process=process_token())
    store.release_lease(c.id, lease.holder)
    assert store.course_version(c.id) == v + 1
    stale = f"The plan was computed before room 2 saved session 1 of the course (record no. {saved}); nothing was " \
            "started. Plan the visit again (re-plan): the new plan counts that session."
    with pytest.raises(UserError) as refused:
        store.add_session(c.id, TODAY, plan={"course_version": v, "areas": []}, state="in_progress")
    assert str(refused.value) == stale
    with pytest.raises(UserError, match="^The plan was computed before room 2"):
        store.check_plan_version(c.id, v)
    assert len(store.history(c.id)) == 1 and store.course_version(c.id) == v + 1
    store.check_plan_version(c.id, v + 1)  # a fresh plan passes


def test_a_plan_made_before_another_room_s_doses_or_its_crash_was_closed_is_refused(course):
    """From the fresh tester of issue 17: room 1 planned while room 2's session had no dose yet; room 2 gave 120
    mJ/cm² and crashed; the crash was closed into the journal, and room 1's start with its old plan was accepted. Every
    write a plan counts (treatments, a session's closing, a response) now changes the course's version: the old plan
    is refused in words, a fresh one passes."""
    store, c, area = course
    store.take_lease(c.id, room="room 2", account="dr-a", process=process_token())
    sid = store.add_session(c.id, TODAY, plan={"course_version": store.course_version(c.id), "areas": []},
                            state="in_progress", process=process_token())
    planned_at = store.course_version(c.id)  # room 1 plans now: the session shows no dose yet
    store.journal_treatment(sid, Treatment(area.id, "light", dose_mj_cm2=120.0))
    assert store.course_version(c.id) > planned_at
    with pytest.raises(UserError, match=r"^The plan was computed before room 2 saved session 1 of the course "
                                        r"\(record no\. \d+\)"):
        store.check_plan_version(c.id, planned_at)
    planned_at = store.course_version(c.id)  # planned again, then the crash is closed (its doses as they stand)
    store.close_session(sid, "crashed", "closed after a crash")
    with pytest.raises(UserError, match="^The plan was computed before"):
        store.add_session(c.id, TODAY, plan={"course_version": planned_at, "areas": []},
                          state="in_progress")
    store.check_plan_version(c.id, store.course_version(c.id))  # a plan made now passes


def test_a_plan_records_the_version_it_was_computed_from_and_the_visit_refuses_it_once_stale(tmp_path, store_url):
    from workstation.session.scenario import load_scenario, resolve_scenario
    from workstation.session.visit import Visit

    scenario = load_scenario(resolve_scenario(Path("hand-atrophic-needling")))
    path, rec = store_url, tmp_path / "rec"
    room_a = Visit.training(scenario, rec, store_path=path)
    try:
        room_b = Visit.training(scenario, rec, store_path=path)  # planned from the same committed state
        try:
            assert room_a.plan.course_version == room_b.plan.course_version == 0
            room_a.begin()
            room_a.end()  # ended before its step: the saved start is what makes room B's plan stale
            files = sorted(rec.rglob("*.h5"))
            with pytest.raises(UserError, match=r"^The plan was computed before .* saved session 1 of the course "
                                                r"\(record no\. \d+\)"):
                room_b.begin()
            assert room_b.session is None and room_b.lease is None and sorted(rec.rglob("*.h5")) == files
            assert room_b.store.lease(room_b.course.id).released_at is not None  # room A released it at its end
        finally:
            room_b.close()
    finally:
        room_a.close()


# --- through the window --------------------------------------------------------------------------------------------
# (SQLite only: the window and the headless command open the training store of the test's folder, an SQLite file.)
def test_the_second_room_sees_the_sentence_and_start_does_nothing(qtbot, window, tmp_path):
    from PyQt6.QtCore import Qt

    from workstation.protocols.library import seeds_dir

    page = window.start_page
    page.scenario.setCurrentIndex(page.scenario.findData(str(seeds_dir() / "scenarios" / "hand-atrophic-needling.toml")))
    qtbot.mouseClick(page.simulation_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.plan_view, timeout=20_000)
    with ClinicStore.open(tmp_path / "store.sqlite3", training=True) as store:
        [c] = store.courses(store.get_patient("TRAIN-0007").id)
        lease, _ = store.take_lease(c.id, room="room 2", account="dr-a", process=process_token())
        qtbot.mouseClick(window.plan_view.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "is being treated in room 2" in window.messages[-1][1], timeout=20_000)
        assert window.messages[-1][1].startswith("TRAIN-0007 is being treated in room 2 by dr-a since")
        assert window.pages.currentWidget() is window.plan_view  # nothing started
        assert store.history(c.id) == [] and not list((tmp_path / "recordings").rglob("*.h5"))
        assert store.lease(c.id).holder == lease.holder
        store.release_lease(c.id, lease.holder)
        qtbot.mouseClick(window.plan_view.start_button, Qt.MouseButton.LeftButton)  # room 2 has finished
        qtbot.waitUntil(lambda: window.pages.currentWidget() is window.treatment, timeout=20_000)
        assert store.lease(c.id).room == os.uname().nodename and store.lease(c.id).released_at is None


# --- every ending of a real headless session releases the lease ----------------------------------------------------
SCENARIOS = REPO / "seeds" / "scenarios"


def _headless(tmp_path: Path, scenario: Path) -> tuple[list[str], Path]:
    store = tmp_path / "training.sqlite3"
    return [sys.executable, str(REPO / "main.py"), "session", "--simulate", "--scenario", str(scenario), "--record",
            str(tmp_path / "rec"), "--store", str(store)], store


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_headless_session_holds_the_lease_while_it_runs_and_releases_it_on_a_signal(tmp_path, signum):
    scenario = tmp_path / "light-only.toml"  # crash-and-restart.toml without its SIGKILL: a ~2.7 s exposure
    scenario.write_text((SCENARIOS / "crash-and-restart.toml").read_text().split("[[events]]")[0])
    cmd, store_path = _headless(tmp_path, scenario)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        for line in proc.stdout:
            if "step 1 started" in line:
                break
        with ClinicStore.open(store_path, training=True) as store:
            [row] = store.in_progress_sessions()
            live = store.live_lease(row["course_id"])
            assert live is not None and live.process == row["process"] and live.account == "trainee-04"
            with pytest.raises(LeaseRefused, match="is being treated in"):
                store.take_lease(row["course_id"], room="room 9", account="dr-z", process=process_token())
        proc.send_signal(signum)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode in (130, 128 + signal.SIGTERM), err
    with ClinicStore.open(store_path, training=True) as store:
        assert store.session_state(row["id"])["state"] in ("partial", "aborted")  # the journal closed it
        assert store.lease(row["course_id"]).released_at is not None


def test_a_killed_headless_session_leaves_a_lease_the_next_start_may_take(tmp_path):
    cmd, store_path = _headless(tmp_path, SCENARIOS / "crash-and-restart.toml")
    first = run_until_killed(cmd, [store_path, tmp_path / "rec"], timeout=120, cwd=REPO)
    assert first.returncode == -signal.SIGKILL, first.stdout + first.stderr
    with ClinicStore.open(store_path, training=True) as store:
        [row] = store.in_progress_sessions()
        left = store.lease(row["course_id"])
        assert left.released_at is None and left.process == row["process"]  # not released: the process was killed
        assert store.live_lease(row["course_id"]) is None  # but free: its process is gone on this host
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert "closed as interrupted by a crash" in second.stdout and "is being treated" not in second.stdout + second.stderr


def test_closing_the_window_during_a_step_releases_the_lease(qtbot, tmp_path):
    from PyQt6.QtCore import Qt

    from workstation.protocols.library import seeds_dir
    from workstation.ui.main_window import MainWindow

    win = MainWindow(recordings_dir=tmp_path / "recordings", store_path=tmp_path / "training.sqlite3")
    qtbot.addWidget(win)
    win.show()
    page = win.start_page
    page.scenario.setCurrentIndex(page.scenario.findData(str(seeds_dir() / "scenarios" / "hand-atrophic-needling.toml")))
    qtbot.mouseClick(page.simulation_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.plan_view, timeout=20_000)
    qtbot.mouseClick(win.plan_view.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.treatment, timeout=20_000)
    with ClinicStore.open(tmp_path / "training.sqlite3", training=True) as store:
        [c] = store.courses(store.get_patient("TRAIN-0007").id)
        assert store.live_lease(c.id) is not None
        qtbot.mouseClick(win.treatment.start_step_button, Qt.MouseButton.LeftButton)
        win.close()
        assert store.lease(c.id).released_at is not None
        assert store.history(c.id)[0].state in ("partial", "aborted", "completed")
