"""A START that the step's thread had decided on when an E-stop, a trip or a pause came is never written after the
STOP: the start gate (drivers.interfaces.Device.inhibit_starts) is shut before the STOP and read where the command
is written.

Fresh tester of issue 12 (seventeenth session): an E-stop pressed as a light step started. The step's thread had
looked at its interrupt, then armed and started: the START reached the light after the E-stop's STOP, the light
acknowledged it and opened its shutter, and the step's own "session interrupted" STOP closed it about a millisecond
later. An interlock that latched must stop emission, not follow it.

The race is made certain here: the step's `arm` (the last command before START) runs the E-stop, the trip or the
pause from another thread and returns only once it has latched. Each case is then taken to its end: reset, resume,
the session completed and saved, the recording holding what was refused and the emulator's own record (not the
driver's belief) showing that nothing started after the stop.
"""

from __future__ import annotations

import threading
import time

import pytest
from conftest import Tap, wait_for
from test_s19_refused_start import _reset

from drivers.codes import AbortCause, InterlockCause
from drivers.errors import StartInhibited
from workstation.recording.reader import Recording
from workstation.session.rig import Rig
from workstation.session.safety import StepLimits
from workstation.session.steps import State
from workstation.session.visit import Visit

WAIT_S = 10.0  # a bound on how long a broken build hangs, not a claim about speed


def _on_the_way(v: Visit, device: str, act, when: str) -> list[float]:
    """Make `act(v)` happen on another thread while the step's thread is about to arm `device` ("before_arm": the
    step had looked at its interrupt and not yet armed) or has armed it and is about to start it ("before_start").
    The step's thread goes on only once `act` has returned and the device has received the STOP it wrote. Returns
    a list that then holds the device's receipt time of that STOP (the emulator's monotonic clock)."""
    drv, emu = v.rig.devices[device], v.rig.emulators[device]
    real_arm, stop_received = drv.arm, []

    def act_now() -> None:
        t0 = time.monotonic()
        worker = threading.Thread(target=act, args=(v,), daemon=True)
        worker.start()
        worker.join(WAIT_S)
        wait_for(lambda: emu.state().last_command_at.get("STOP", 0.0) > t0, WAIT_S, f"the {device} stopped")
        stop_received.append(emu.state().last_command_at["STOP"])

    def arm(on: bool = True) -> None:
        first = on and not stop_received
        if first and when == "before_arm":
            act_now()
        real_arm(on)
        if first and when == "before_start":
            act_now()

    drv.arm = arm
    return stop_received


def _commands(path, device: str, command: str) -> list[str]:
    with Recording.open(path) as rec:
        return [c.result for c in rec.commands if c.device == device and c.command == command]


# what stops the session, and the words the refused START's command row holds: the reason of whichever start
# inhibit was set first on that device (the session's, as it is interrupted, or the monitor's, as it latches)
CASES = {
    "estop": (lambda v: v.session.estop("STOP button"), ("E-stop (STOP button)",)),
    "trip": (lambda v: v.rig.monitor.estop("the light's footswitch"),
             ("the estop interlock is latched (reset it first)", "the estop interlock tripped")),
    "pause": (lambda v: v.pause("paused by the operator"), ("the session was paused (paused by the operator)",)),
    # a Resume 5 ms after the Pause, while the step's run has not ended: before, it cleared the interrupt and opened
    # the gate under that run, which then armed and started the device after the STOP (a fresh tester, 18th session)
    "pause_resume": (lambda v: _pause_then_resume(v), ("the session was paused (paused by the operator)",)),
}


def _pause_then_resume(v: Visit) -> None:
    from workstation.session.session import SessionError

    v.pause("paused by the operator")
    time.sleep(0.005)
    with pytest.raises(SessionError, match="the interrupted step is still ending"):
        v.resume()


@pytest.mark.parametrize("when", ["before_arm", "before_start"])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("device", ["light", "pen"])
def test_a_start_on_its_way_when_the_session_was_stopped_is_never_written_after_the_stop(visit, case, device, when):
    v = visit
    act, words = CASES[case]
    v.begin(abort_on_trip=False)  # as the window does: a trip pauses, and the session goes on after the reset
    emu = v.rig.emulators[device]
    if device == "pen":  # step 1 is the light's: give it, so the pen's step is next
        assert v.run_all(lambda: None if not v.session.results else v.pause("after the light step")) == State.PAUSED
        v.resume()
    stop_received = _on_the_way(v, device, act, when)
    assert v.run_all() == State.PAUSED
    (t_stop,) = stop_received
    st = emu.state()
    # before the gate: the ARM and START went out after the STOP, were acknowledged, and the light emitted (the pen
    # ran) until the step's own "session interrupted" STOP; armed before the STOP, the device refused the START
    assert st.last_command_at.get("START", 0.0) < t_stop, "a START reached the device after its STOP"
    if when == "before_arm":
        assert st.last_command_at.get("ARM", 0.0) < t_stop, "an ARM reached the device after its STOP"
    if device == "light":
        assert st.shutter_opened_at is None  # no light at all in this session
    else:
        assert st.started_at is None
        assert v.session.results[-1].passes_done == 0  # the pass never began: not counted against the maximum
    result = v.session.results[-1]
    assert result.outcome == "interrupted" and result.delivered_dose_mj_cm2 == 0.0
    # the rest: reset (an interlock latched), resume, the step again and the session completed
    wait_for(lambda: _reset(v), WAIT_S, "a reset the devices accept")
    v.resume()
    assert v.run_all() == State.COMPLETED
    saved = v.end()
    assert saved.summary["state"] == "completed" and saved.sha256 is not None
    refused_command = "arm" if when == "before_arm" else "start"
    rows = _commands(saved.recording, device, refused_command)
    refused = [r for r in rows if r.startswith("not sent:")]
    assert len(refused) == 1 and refused[0].removeprefix("not sent: ") in words, rows
    assert not [r for r in rows if r.startswith("refused")], rows  # the device was never asked
    assert rows[-1] == "ack"  # the step given after the resume


# A pause or a stop that comes while the step's thread looks at the state (run_step), its STOP written and its state
# change not yet made: the fresh tester's race of the eighteenth session. Before, the step's look passed, its clear
# erased the pause's interrupt and reopened the session's gate, and the light gave its whole dose after the STOP.
STOPS = {
    "pause": (lambda v: v.session.pause(v.operator, "paused by the operator"), State.PAUSED),
    "stop": (lambda v: v.session.operator_stop(v.operator, "stopped by the operator"), State.ABORTED),
    # Visit.end's look raced a starting step (a fresh tester, 18th session: the abort moved it to ABORTED unstopped)
    "end": (lambda v: v.session.abort(v.operator, "ended by the operator", AbortCause.OPERATOR), State.ABORTED),
}


@pytest.mark.parametrize("case", sorted(STOPS))
@pytest.mark.parametrize("device", ["light", "pen"])
def test_a_pause_or_stop_while_the_step_looks_at_the_state_is_never_followed_by_its_start(visit, case, device):
    v = visit
    act, settles_as = STOPS[case]
    v.begin(abort_on_trip=False)
    if device == "pen":
        assert v.run_all(lambda: None if not v.session.results else v.pause("after the light step")) == State.PAUSED
        v.resume()
    session, tap = v.session, Tap()
    v.rig.bus.subscribe(tap)
    real_look, real_stop_all, acting = session._refuse_if_held, session._stop_all, []

    def stop_all_then_wait(why: str) -> None:  # the act's thread, slow between its STOP and its state change
        real_stop_all(why)
        if threading.current_thread() is acting[0]:
            time.sleep(0.3)

    def look_while_it_acts() -> None:  # on the step's thread, inside run_step's look
        real_look()
        if not acting:
            acting.append(threading.Thread(target=act, args=(v,), daemon=True))
            acting[0].start()
            acting[0].join(0.3)  # done, or waiting for the look to end (the session's lock)

    session._refuse_if_held, session._stop_all = look_while_it_acts, stop_all_then_wait
    ended_as = v.run_all()
    acting[0].join(WAIT_S)
    assert session.state == settles_as, ended_as
    wait_for(lambda: any(c.command == "stop" and c.args.get("why", "").endswith("by the operator")
                         for c in tap.commands), WAIT_S, "the act's STOP recorded")
    written = sorted((c for c in tap.commands if c.device == device and not c.result.startswith("not sent")),
                     key=lambda c: c.t_host_s)
    t_stop = next(c.t_host_s for c in written if c.command == "stop" and c.args.get("why", "").endswith("by the operator"))
    after = [(c.command, c.args, c.result) for c in written if c.t_host_s > t_stop]
    assert not [c for c in after if c[0] == "start" or (c[0] == "arm" and c[1].get("on"))], after
    emu = v.rig.emulators[device]
    assert emu.state().last_command_at.get("START", 0.0) <= emu.state().last_command_at["STOP"]
    assert not emu.state().active
    if case == "pause":  # and the session goes on to its end
        session._refuse_if_held, session._stop_all = real_look, real_stop_all
        v.resume()
        assert v.run_all() == State.COMPLETED
        assert v.end().summary["state"] == "completed"
    else:
        saved = v.end()
        assert saved.summary["state"] in ("aborted", "partial") and saved.sha256 is not None


def test_a_latched_interlock_refuses_arm_and_start_unwritten_until_reset_even_across_a_reconnection():
    rig = Rig.simulation(seed=5, light_warmup_s=0.2)
    try:
        light, emu = rig.devices["light"], rig.emulators["light"]
        wait_for(lambda: rig.monitor.last_block_s("light") > 0, WAIT_S, "the light's telemetry")
        rig.monitor.estop("the test")
        assert rig.monitor.is_tripped("light")
        t_latched = emu.state().last_command_at["STOP"]
        for command in (lambda: light.arm(True), light.start):
            with pytest.raises(StartInhibited, match=r"light: (arm|start) was not sent: the estop interlock is "
                                                     r"latched \(reset it first\)\."):
                command()
        light.arm(False)  # disarming stays possible: it can only make the device safer
        assert emu.state().last_command_at["ARM"] > t_latched  # written and received
        # the latch outlives the connection: a replugged light is still refused
        emu.unplug()
        wait_for(lambda: not light.connected, WAIT_S, "the unplug seen")
        emu.replug()
        wait_for(lambda: light.connected and rig.monitor.last_block_s("light") > 0, WAIT_S, "the light back")
        with pytest.raises(StartInhibited):
            light.start()
        assert "START" not in emu.state().last_command_at
        wait_for(lambda: _reset_rig(rig), WAIT_S, "a reset the light accepts")
        rig.monitor.set_limits(StepLimits(area_id="A1", light_allowed=True, target_dose_mj_cm2=20.0))
        light.set_target_dose(20.0)
        light.arm(True)
        light.start()  # the gate is open again: written and acknowledged
        wait_for(lambda: emu.state().shutter_opened_at is not None, WAIT_S, "the light emitting after the reset")
    finally:
        rig.close()


def _reset_rig(rig: Rig) -> bool:
    from workstation.session.safety import ResetRefused

    try:
        rig.monitor.reset_checked("the test")
    except ResetRefused:
        return False
    return not rig.monitor.is_tripped()


def test_a_trip_between_the_reset_clearing_the_latch_and_its_gates_keeps_its_gate_shut():
    """The monitor's reset clears the latch and opens the gates in one step: a trip on another thread either comes
    before (cleared with the rest: the operator reset it) or after (its gate shut again)."""
    rig = Rig.simulation(seed=6, light_warmup_s=0.2)
    try:
        light = rig.devices["light"]
        rig.monitor.estop("first")
        rig.monitor.reset("the test")
        assert light.link.start_inhibited() is None
        rig.monitor._trip(InterlockCause.CONTACT_LOST, "light", "no contact", 0.0)
        assert light.link.start_inhibited() == "the contact_lost interlock is latched (reset it first)"
    finally:
        rig.close()


def test_the_window_stop_button_pressed_as_a_light_step_starts_lets_no_light_out_and_the_session_ends_saved(
        qtbot, window, tmp_path):
    """The tester's case through the window: STOP clicked (on the GUI thread) after the step's thread had decided
    to arm and start the light. No ARM or START reached the light after the STOP; the window says the stop and
    the recording holds the refused ARM; reset, resume and both steps then complete and the session is saved."""
    from PyQt6.QtCore import QMetaObject, Qt
    from test_ui_recovery import click, end
    from test_ui_session import TIMEOUT_MS, arm, run_step, start_training

    win, tv = window, window.treatment
    start_training(qtbot, win, "combined-uneventful.toml")
    arm(qtbot, win)
    rig = win.controller.rig
    drv, emu = rig.devices["light"], rig.emulators["light"]
    real_arm, stop_received = drv.arm, []

    def arm_after_a_stop_click(on: bool = True) -> None:  # on the step's thread
        if on and not stop_received:
            t0 = time.monotonic()
            QMetaObject.invokeMethod(tv.stop_button, "click", Qt.ConnectionType.QueuedConnection)
            wait_for(lambda: emu.state().last_command_at.get("STOP", 0.0) > t0, WAIT_S, "the STOP received")
            stop_received.append(emu.state().last_command_at["STOP"])
        real_arm(on)

    drv.arm = arm_after_a_stop_click
    click(qtbot, tv.start_step_button)
    qtbot.waitUntil(lambda: bool(stop_received) and not tv.step_running, timeout=TIMEOUT_MS)
    st = emu.state()
    assert st.last_command_at.get("ARM", 0.0) < stop_received[0] and "START" not in st.last_command_at
    assert st.shutter_opened_at is None
    assert any("STOP: both devices were told to stop" in m[1] for m in win.messages)
    click(qtbot, tv.reset_button)
    qtbot.waitUntil(lambda: not tv.interlocks.tripped(), timeout=TIMEOUT_MS)
    click(qtbot, tv.resume_button)
    run_step(qtbot, win)
    run_step(qtbot, win)
    summary = end(qtbot, win)
    assert summary["state"] == "completed"
    arms = _commands(win.controller.saved.recording, "light", "arm")
    assert [r for r in arms if r.startswith("not sent:")] == ["not sent: E-stop (STOP button)"], arms


def test_the_window_pause_pressed_as_a_step_starts_gives_no_light_after_its_stop_and_the_session_goes_on(
        qtbot, window):
    """The tester's race through the window: Pause pressed (on the GUI thread) while the step's thread looks at the
    state. Before, the window said "Paused: both devices were stopped" while the light gave the whole 260 mJ/cm²."""
    from PyQt6.QtCore import QMetaObject, Qt
    from test_ui_recovery import click, end
    from test_ui_session import TIMEOUT_MS, arm, run_step, start_training

    win, tv = window, window.treatment
    start_training(qtbot, win, "combined-uneventful.toml")
    arm(qtbot, win)
    session, emu = win.controller.session, win.controller.rig.emulators["light"]
    real_look, pressed = session._refuse_if_held, []

    def look_while_pause_is_pressed() -> None:  # on the step's thread
        real_look()
        if not pressed:
            pressed.append(time.monotonic())
            QMetaObject.invokeMethod(tv.pause_button, "click", Qt.ConnectionType.QueuedConnection)
            time.sleep(0.3)  # the click is taken by the GUI thread meanwhile

    session._refuse_if_held = look_while_pause_is_pressed
    click(qtbot, tv.start_step_button)
    qtbot.waitUntil(lambda: bool(pressed) and not tv.step_running and session.state == State.PAUSED,
                    timeout=TIMEOUT_MS)
    session._refuse_if_held = real_look
    st = emu.state()
    assert st.last_command_at.get("START", 0.0) <= st.last_command_at["STOP"], "a START reached the light after the STOP"
    assert not st.active
    assert session.results[-1].outcome == "interrupted"
    click(qtbot, tv.resume_button)
    run_step(qtbot, win)
    run_step(qtbot, win)
    summary = end(qtbot, win)
    assert summary["state"] == "completed"



def test_a_resume_right_after_a_pause_mid_exposure_is_refused_until_the_step_has_ended(visit):
    """Before, the Resume cleared the interrupt the exposure's wait was watching: the step waited its whole 49 s
    timeout (the light stopped, no dose-reached to come) and was noted "the exposure did not end within 49 s"."""
    from workstation.session.session import SessionError

    v = visit
    v.begin(abort_on_trip=False)
    emu = v.rig.emulators["light"]
    worker = threading.Thread(target=v.run_all, daemon=True)
    worker.start()
    wait_for(lambda: emu.state().active, WAIT_S, "the light emitting")
    v.pause("paused by the operator")
    with pytest.raises(SessionError, match="the interrupted step is still ending"):
        v.resume()
    assert v.session.wait_step_ended(WAIT_S)
    worker.join(WAIT_S)
    (result,) = v.session.results
    assert result.outcome == "interrupted" and "did not end" not in (result.note or "")
    assert result.t_end_s - result.t_start_s < WAIT_S
    v.resume()  # now it can
    assert v.run_all() == State.COMPLETED
    assert v.end().summary["state"] == "completed"


def test_closing_the_window_as_a_step_starts_lets_no_light_out(qtbot, window):
    """A fresh tester closed the window as Start next step was pressed: the session was still armed, so the close
    sent no E-stop, and the light gave its whole dose while the window closed."""
    from test_ui_recovery import click
    from test_ui_session import arm, start_training

    win, tv = window, window.treatment
    start_training(qtbot, win, "combined-uneventful.toml")
    arm(qtbot, win)
    session, emu = win.controller.session, win.controller.rig.emulators["light"]
    real_look, looked = session._refuse_if_held, threading.Event()

    def slow_look() -> None:  # the worker, slow to look on a loaded machine
        looked.set()
        time.sleep(0.3)
        real_look()

    session._refuse_if_held = slow_look
    click(qtbot, tv.start_step_button)
    assert looked.wait(WAIT_S)
    win.close()
    assert emu.state().shutter_opened_at is None and "START" not in emu.state().last_command_at
