"""A step refused because another thread acted between the headless loop's look at the state and the start.

Fresh tester of issue 12 (seventeenth session): the disk filled right after step 1 of a `session` run. The recorder's
failure E-stopped both devices and latched the monitor; the runner's loop had already seen the session armed, its
next start was refused ("an interlock is latched") and the refusal escaped the runner: exit 1, "an internal error
stopped the command", no summary. The session's own trip hook (which aborts a headless session) runs on the tripping
thread after the latch, so the loop can meet the latch before the session has moved.

Here the race is made certain: a hook ahead of the session's holds the tripping thread until the loop has met the
latch. The same loop (Session.run_steps) serves `Visit.run_all` (the runner) and `Session.run_all`.
"""

from __future__ import annotations

import threading

import pytest
from conftest import wait_for
from test_held_up import SCENARIO

from drivers.codes import AbortCause
from workstation.recording.reader import Recording
from workstation.session.scenario import load_scenario
from workstation.session.steps import State
from workstation.session.visit import Visit


def _latch_between_steps(v: Visit, how: str) -> tuple[callable, threading.Event]:
    """A `before_step` that, before the second step, latches the monitor from another thread whose trip hooks are
    held (the session's hook has not run when the loop goes on), and returns once the latch is set."""
    monitor = v.rig.monitor
    release, calls = threading.Event(), []
    monitor.on_trip.insert(0, lambda trip: release.wait(10))  # ahead of the session's own hook

    def trip() -> None:
        monitor.estop("the test, between two steps")
        if how == "held":  # as the recorder's failure does: E-stop, then the hold no reset clears
            monitor.hold("The recording failed: the disk is full.", "the recording failed", AbortCause.RECORDING)

    def before_step() -> None:
        calls.append(1)
        if len(calls) == 2:
            threading.Thread(target=trip, daemon=True).start()
            wait_for(monitor.is_tripped, 5, "the latch")

    return before_step, release


@pytest.mark.parametrize("how", ["estop", "held"])
def test_a_headless_session_latched_between_steps_ends_aborted_and_saved(visit, how):
    v = visit
    v.begin(abort_on_trip=True)  # the runner's headless session: a trip ends it
    before_step, release = _latch_between_steps(v, how)
    try:
        state = v.run_all(before_step)  # before: SessionError "an interlock is latched: reset it before starting a step."
    finally:
        release.set()
    assert state == State.ABORTED
    session = v.session
    assert session.abort_cause == AbortCause.INTERLOCK
    assert session.abort_reason.startswith("interlock estop on light: E-stop (the test, between two steps)")
    assert [r.outcome for r in session.results] == ["done"]  # step 1 done, step 2 never started
    saved = v.end()
    assert saved.summary["state"] == "partial" and saved.recording is not None and saved.sha256 is not None
    with Recording.open(saved.recording) as rec:
        started = [e for e in rec.events if e.kind == "protocol" and e.details.get("event") == "step_started"]
        assert len(started) == 1
        assert any(e.kind == "interlock" and e.details.get("interlock") == "estop" for e in rec.events)
        aborted = [e for e in rec.events if e.kind == "state" and e.details.get("to") == "aborted"]
        assert len(aborted) == 1  # the loop and the hook both acted: one transition


def test_a_session_that_pauses_on_trips_latched_between_steps_pauses_and_goes_on_after_reset_and_resume(visit):
    """A scenario that resumes after a trip (the runner lets trips pause it, as the window does): the loop ends with
    the session paused for the interlock, and after the reset and the resume the rest runs and it completes."""
    v = visit
    v.begin(abort_on_trip=False)
    before_step, release = _latch_between_steps(v, "estop")
    try:
        assert v.run_all(before_step) == State.PAUSED
    finally:
        release.set()
    session = v.session
    assert session.pause_cause == AbortCause.INTERLOCK
    wait_for(lambda: _reset(v), 10, "a reset the devices accept")
    session.resume(v.operator)
    assert v.run_all() == State.COMPLETED
    assert [r.outcome for r in session.results] == ["done", "done"]
    assert v.end().summary["state"] == "completed"


def _reset(v: Visit) -> bool:
    """One reset; False while refused. An E-stop latches device after device: the last may latch during the reset,
    which then refuses and clears nothing (test_s21_reset_races), so the next try clears them all."""
    from workstation.session.safety import ResetRefused
    from workstation.session.session import SessionError

    try:
        v.reset_interlocks()
    except (SessionError, ResetRefused):
        return False
    return not v.rig.monitor.is_tripped()


def test_a_pause_between_steps_ends_the_headless_loop_paused_not_with_an_error(visit):
    """The scenario's `pause` landing after the loop saw the session armed: before, Visit.run_step raised "The
    session is paused" out of the runner."""
    v = visit
    v.begin(abort_on_trip=True)
    calls = []

    def before_step() -> None:
        calls.append(1)
        if len(calls) == 2:
            v.pause("paused by the scenario")

    assert v.run_all(before_step) == State.PAUSED
    assert [r.outcome for r in v.session.results] == ["done"]
    saved = v.end()
    assert saved.summary["state"] == "partial"  # aborted after step 1 was given
    assert "ended by the operator with 1 of 2 steps done" in saved.summary["abort_reason"]


@pytest.mark.parametrize("failed", ["recording", "store"])
def test_a_session_completed_before_its_recording_or_store_failed_is_not_said_to_have_stopped_early(failed):
    """Fresh tester of issue 12: a disk filled after the last step gave "outcome: completed (stopped early), NOT as
    expected (the scenario expects it to run to the end); exit code 3": every step was done."""
    from workstation.session.runner import _print_summary

    lines: list[str] = []
    summary = {"state": "completed", "abort_reason": "", "steps_done": 2, "steps_planned": 2, "results": [],
               "trips": []}
    _print_summary(lines.append, load_scenario(SCENARIO), summary, None, "", 3,
                   recording_failure="the disk is full" if failed == "recording" else None,
                   store_failure="the store is read-only" if failed == "store" else None)
    outcome = lines[-1]
    assert outcome.startswith(f"outcome: completed (every step done), as expected, but the {failed} failed"), outcome
    assert "stopped early" not in outcome and "NOT as expected" not in outcome
