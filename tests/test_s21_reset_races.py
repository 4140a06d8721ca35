"""A STOP, an E-stop or a new interlock that comes while the operator's reset is running is never cleared by that
reset: only what was latched when the reset was asked for can be cleared (SafetyMonitor.causes_seen, taken as the
operator asks; SafetyMonitor.reset's `unless_seen_since`).

Fresh tester of issue 12 (nineteenth session), through the window: a light step, skin contact lost and back, then
*Reset interlocks* and STOP clicked 0, 5 or 20 ms later. The STOP fell inside the reset (the devices answer RESET in
50–60 ms), the reset then cleared "contact_lost, estop", the window showed the E-stop light grey, Resume was
enabled, and Resume then Start next step made the light emit with no reset after the STOP. With an E-stop already
latched, a second STOP during the reset left nothing in the recording and was cleared the same way.

The STOP (or the new cause) is made to land inside the reset for certain: the device's own RESET, which the reset
sends after it has judged the causes and before it clears the latch, presses it. Each case is then taken to its
end: the refusal in words and in the recording, the latch and the start gate still shut, resume refused, then a
second reset, resume, the session completed and saved, and the emulator's own record of when the light started.
"""

from __future__ import annotations

import threading
import time

import pytest
from conftest import Tap, wait_for
from test_s19_refused_start import _reset

from workstation.recording.reader import Recording
from workstation.session.safety import ResetRefused
from workstation.session.session import SessionError
from workstation.session.steps import State
from workstation.session.visit import Visit

WAIT_S = 10.0  # a bound on how long a broken build hangs, not a claim about speed


def _contact_lost_mid_exposure(v: Visit) -> None:
    """The light's step with skin contact lost mid-exposure (the contact_lost interlock latches and the session
    pauses), then contact back: the tester's first half."""
    emu = v.rig.emulators["light"]
    step = threading.Thread(target=v.run_all, daemon=True)
    step.start()
    wait_for(lambda: emu.state().shutter_opened_at is not None, WAIT_S, "the light emitting")
    emu.contact_lost()
    wait_for(lambda: v.rig.monitor.is_tripped("light"), WAIT_S, "the contact_lost interlock")
    step.join(WAIT_S)
    emu.set_contact(True)
    assert v.session.state == State.PAUSED


def _estop(v: Visit) -> None:
    v.session.estop("STOP button")


# what is latched before the reset, and what comes while the devices answer its RESET
CASES = {
    # the tester's case: contact lost, then STOP pressed during the reset
    "stop_after_contact_lost": (_contact_lost_mid_exposure, lambda v: v.session.estop("STOP button")),
    # the E-stop already latched, STOP pressed again during the reset (before: nothing in the file, then cleared)
    "stop_again": (_estop, lambda v: v.session.estop("STOP button")),
    # another source of the same kind: the light's footswitch E-stop, on the monitor directly
    "footswitch": (_contact_lost_mid_exposure, lambda v: v.rig.monitor.estop("the light's footswitch")),
    # another cause of another kind: the pen's cable pulled during the reset (the pen's RESET then fails too)
    "unplug": (_estop, lambda v: v.rig.emulators["pen"].unplug()),
}


def _go_on(v: Visit) -> None:
    """Resume a paused session, or arm one an E-stop left armed (each refused while an interlock is latched)."""
    if v.session.state == State.PAUSED:
        v.resume()
    else:
        v.session.arm(v.operator)



def _during_the_reset(v: Visit, act) -> list[float]:
    """Make `act(v)` happen on another thread as the light answers its RESET (after the reset judged the causes,
    before it clears the latch); returns a list that then holds the monotonic time it was done."""
    drv = v.rig.devices["light"]
    real_reset, done = drv.reset_faults, []

    def reset_faults() -> None:
        real_reset()
        if not done:
            t0 = time.monotonic()
            worker = threading.Thread(target=act, args=(v,), daemon=True)
            worker.start()
            worker.join(WAIT_S)
            done.append(t0)

    drv.reset_faults = reset_faults
    return done


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_stop_or_a_new_cause_during_the_reset_is_never_cleared_by_it(visit, case):
    v = visit
    before, act = CASES[case]
    v.begin(abort_on_trip=False)  # as the window does: a trip pauses, and the session goes on after the reset
    tap = Tap()
    v.rig.bus.subscribe(tap)
    before(v)
    light, emu = v.rig.devices["light"], v.rig.emulators["light"]
    pressed = _during_the_reset(v, act)
    with pytest.raises(ResetRefused, match="nothing was reset" if case != "unplug" else "pen could not be reset"):
        v.reset_interlocks()
    assert pressed
    # what came during the reset stays latched, its gate shut: no resume, no arm, no start
    assert v.rig.monitor.is_tripped()
    assert light.link.start_inhibited() is not None
    with pytest.raises(SessionError, match="an interlock is latched"):
        _go_on(v)
    refused = [e for e in tap.events if e.kind == "interlock_reset_refused"]
    assert refused and ("nothing was reset" in refused[-1].message or case == "unplug")
    assert not [e for e in tap.events if e.kind == "interlock_reset"]  # nothing was cleared
    if case == "unplug":
        v.rig.emulators["pen"].replug()
    # the operator resets again: it clears what is latched now, and the session goes on to its end
    wait_for(lambda: _reset(v), WAIT_S, "a second reset the devices accept")
    (reset_event,) = [e for e in tap.events if e.kind == "interlock_reset"]
    if case != "unplug":
        assert "estop" in reset_event.details["cleared"]
    t_reset = time.monotonic()
    assert emu.state().last_command_at.get("START", 0.0) < t_reset  # no START between the STOP and this reset
    if v.session.state == State.PAUSED:
        v.resume()
    assert v.run_all() == State.COMPLETED
    saved = v.end()
    assert saved.summary["state"] == "completed" and saved.sha256 is not None
    with Recording.open(saved.recording) as rec:
        kinds = [e.kind for e in rec.events]
    # in the file, in this order: the refused reset, then the one that cleared
    assert kinds.index("interlock_reset_refused") < kinds.index("interlock_reset")


def test_a_reset_takes_what_was_latched_when_it_was_asked_for_not_when_its_thread_started(visit):
    """The window takes `causes_seen` on the click, on the GUI thread: a STOP clicked right after it, even one that
    latches before the worker begins the reset, is not cleared by it."""
    v = visit
    v.begin(abort_on_trip=False)
    _estop(v)
    seen = v.rig.monitor.causes_seen  # the click
    v.session.estop("STOP button")  # the next click, before the worker runs
    with pytest.raises(ResetRefused, match="nothing was reset"):
        v.reset_interlocks(seen)
    assert v.rig.monitor.is_tripped()
    wait_for(lambda: _reset(v), WAIT_S, "a reset asked for after the STOP")
    assert not v.rig.monitor.is_tripped()


def test_the_window_stop_clicked_during_a_reset_stays_latched_and_resume_stays_off(qtbot, window):
    """The tester's case through the window: STOP clicked right after Reset interlocks (the reset still waiting
    for the devices' answers). The E-stop stays latched, the window says the reset was refused, Resume and Start
    next step stay off; a second reset, then resume, both steps and the session saved."""
    from test_ui_recovery import click, end
    from test_ui_session import TIMEOUT_MS, arm, run_step, start_training

    win, tv = window, window.treatment
    start_training(qtbot, win, "combined-uneventful.toml")
    arm(qtbot, win)
    click(qtbot, tv.stop_button)
    qtbot.waitUntil(lambda: bool(tv.interlocks.tripped()), timeout=TIMEOUT_MS)
    emu = win.controller.rig.emulators["light"]
    click(qtbot, tv.reset_button)
    click(qtbot, tv.stop_button)  # at once: the reset is waiting for a block 50 ms after it was asked for
    qtbot.waitUntil(lambda: not tv.resetting, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: any("nothing was reset" in m[1] for m in win.messages), timeout=TIMEOUT_MS)
    assert tv.interlocks.tripped()  # the E-stop light stays on
    assert not tv.resume_button.isEnabled() and not tv.start_step_button.isEnabled()
    assert "START" not in emu.state().last_command_at
    click(qtbot, tv.reset_button)
    qtbot.waitUntil(lambda: not tv.interlocks.tripped(), timeout=TIMEOUT_MS)
    assert win.controller.session.state == State.ARMED  # stopped while armed: armed again once reset, no resume
    run_step(qtbot, win)
    run_step(qtbot, win)
    summary = end(qtbot, win)
    assert summary["state"] == "completed"


def test_the_latched_interlocks_are_named_in_words_for_a_session_left_paused(visit):
    """What the headless runner names when a session it cannot resume ends paused with no step interrupted: the
    latched interlocks, not "the session was paused" (a fresh tester, nineteenth session)."""
    v = visit
    v.begin(abort_on_trip=False)
    assert v.session.latched_cause() == ""
    _estop(v)
    assert v.session.latched_cause() == "interlock estop on light; interlock estop on pen"


def test_the_window_never_says_ready_when_a_stop_came_after_the_reset_cleared(qtbot, window):
    """A fresh tester (nineteenth session): STOP clicked about 90 ms after Reset interlocks, after the monitor had
    cleared the latch and before the window showed the reset's result. The STOP was latched (right), but the window
    said "Interlocks reset: E-stop. Start the next step when ready." and "session: ready — interlocks reset" with
    the E-stop light red. The STOP is made to land there for certain: on the worker, as the reset returns."""
    from test_ui_recovery import click, end
    from test_ui_session import TIMEOUT_MS, arm, run_step, start_training

    win, tv = window, window.treatment
    start_training(qtbot, win, "combined-uneventful.toml")
    arm(qtbot, win)
    click(qtbot, tv.stop_button)
    qtbot.waitUntil(lambda: bool(tv.interlocks.tripped()), timeout=TIMEOUT_MS)
    visit = win.controller.visit
    real_reset, stopped = visit.reset_interlocks, []

    def reset_then_a_stop(seen=None) -> list:
        cleared = real_reset(seen)
        if not stopped:
            stopped.append(visit.session.estop("STOP button"))
        return cleared

    visit.reset_interlocks = reset_then_a_stop
    click(qtbot, tv.reset_button)
    qtbot.waitUntil(lambda: not tv.resetting and bool(stopped), timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: "reset the interlocks to go on" in tv.state_label.text(), timeout=TIMEOUT_MS)
    last = win.messages[-1][1]
    assert "latched again" in last and "when ready" not in last, win.messages[-3:]
    assert tv.interlocks.tripped() and not tv.start_step_button.isEnabled()
    visit.reset_interlocks = real_reset
    click(qtbot, tv.reset_button)
    qtbot.waitUntil(lambda: not tv.interlocks.tripped(), timeout=TIMEOUT_MS)
    assert "when ready" in win.messages[-1][1]
    run_step(qtbot, win)
    run_step(qtbot, win)
    assert end(qtbot, win)["state"] == "completed"


def test_stop_pressed_again_while_the_e_stop_is_latched_sends_the_stop_again_and_records_it(visit):
    """A fresh tester (nineteenth session): a second STOP with the E-stop latched wrote nothing to the devices and
    nothing to the file, while the window said "both devices were told to stop". A first STOP lost on its way would
    then never be sent again. Judged on the emulators' own record and on the recording's command rows."""
    v = visit
    v.begin(abort_on_trip=False)
    _estop(v)
    t0 = time.monotonic()
    v.session.estop("STOP button")
    for device in ("light", "pen"):
        emu = v.rig.emulators[device]
        wait_for(lambda emu=emu: emu.state().last_command_at.get("STOP", 0.0) > t0, WAIT_S, f"the {device}'s STOP")
    assert v.rig.monitor.is_tripped()
    wait_for(lambda: _reset(v), WAIT_S, "a reset")
    assert v.run_all() == State.COMPLETED
    saved = v.end()
    with Recording.open(saved.recording) as rec:
        again = [c for c in rec.commands if c.command == "stop" and "(again)" in str(c.args)]
    assert {c.device for c in again} == {"light", "pen"}, [(c.device, c.args, c.result) for c in rec.commands
                                                           if c.command == "stop"]
