"""The window's thin adapter to the visit service (workstation/session/visit.py), which the headless runner uses too.

Everything that waits on a device or the disk (bring-up, steps, reset, saving) runs on the controller's one worker
thread (`Tasks`); results come back on the GUI thread. STOP, pause and resume are called from the GUI thread: they
only write stop frames or change state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QTimer

from drivers.codes import AbortCause
from workstation.bus import SessionBus
from workstation.dose import SessionPlan
from workstation.errors import UserError
from workstation.plotbuffer import PlotBuffers
from workstation.session.session import SessionError, State, Step
from workstation.session.visit import Places, Saved, Visit
from workstation.ui.bus_bridge import ActivityWatch, BusBridge, Tasks
from workstation.ui.plots import plotted_channels
from workstation.ui.wording import keep_ports

__all__ = ["Saved", "SessionController"]

Done = Callable[[Any], None]
Failed = Callable[[Exception], None]


class SessionController:
    """The window's adapter to the visit service: it runs the Visit's waiting calls on its worker thread and hands
    their results back on the GUI thread. A mode change (training, clinical, home) closes the visit and starts a new
    one, so nothing of one visit survives into the next."""

    def __init__(self, bus: SessionBus, buffers: PlotBuffers, bridge: BusBridge, tasks: Tasks, *,
                 recordings_dir: Path, store_path: Path | None = None, places: Places | None = None) -> None:
        self.bus, self.buffers, self.bridge, self.tasks = bus, buffers, bridge, tasks
        self.session_t0_listeners: list[Callable[[float], None]] = []  # told the recording's time 0 at each start
        self.activity = ActivityWatch()
        bus.subscribe(self.activity)
        self.recordings_dir = Path(recordings_dir)
        self.store_path = store_path
        self.places = places or Places()
        self.mode = "simulation"
        self.visit: Visit | None = None
        self.operator = "operator"
        self.crashed: list = []  # sessions closed as crashed when the last visit opened its store
        self.signed_in = False  # the window signed `operator` in: the clinic store checks the account at each write

    @classmethod
    def create(cls, *, recordings_dir: Path, store_path: Path | None = None,
               places: Places | None = None) -> SessionController:
        bus = SessionBus()
        buffers = PlotBuffers(plotted_channels(), capacity_s=600, rate_hz=2000)
        bridge = BusBridge()
        bus.subscribe(buffers)
        bus.subscribe(bridge)
        return cls(bus, buffers, bridge, Tasks("session-worker"), recordings_dir=recordings_dir,
                   store_path=store_path, places=places)

    # --- the visit's parts, for the views (None when there is no visit) --------------------------------------------
    def _part(self, name: str) -> Any:
        return getattr(self.visit, name) if self.visit is not None else None

    rig = property(lambda self: self._part("rig"))
    store = property(lambda self: self._part("store"))
    library = property(lambda self: self._part("library"))
    scenario = property(lambda self: self._part("scenario"))
    course = property(lambda self: self._part("course"))
    plan = property(lambda self: self._part("plan"))
    session = property(lambda self: self._part("session"))
    saved = property(lambda self: self._part("saved"))
    pseudonym = property(lambda self: self._part("pseudonym") or "")

    # --- bring-up (worker) ----------------------------------------------------------------------------------------
    def _release(self) -> None:
        """Worker: close the visit an earlier or failed bring-up left open (one rig, one monitor on the bus)."""
        visit, self.visit = self.visit, None
        if visit is not None:
            visit.close()

    def _open(self, make: Callable[[], Visit], result: Callable[[Visit], Any], done: Done, failed: Failed) -> None:
        def work() -> Any:
            self._release()
            visit = make()
            self.visit, self.crashed = visit, visit.crashed
            self.activity.watch(visit.rig.devices)
            return result(visit)

        self.tasks.run(work, done, failed)

    def start_simulation(self, scenario_path: Path, done: Done, failed: Failed) -> None:
        """A training patient from a scenario file: store, emulated rig, plan. done(plan)."""
        from workstation.session.scenario import load_scenario

        def make() -> Visit:
            scenario = load_scenario(scenario_path)
            self.mode, self.operator = "simulation", scenario.operator_id
            return Visit.training(scenario, self.places.training_recordings or self.recordings_dir,
                                  store_path=self.store_path, bus=self.bus, places=self.places)

        self._open(make, lambda v: v.plan, done, failed)

    def start_clinical(self, ports: dict[str, str], done: Done, failed: Failed) -> None:
        keep_ports(ports.values())  # the user typed them: messages show them as typed

        def make() -> Visit:
            self.mode = "clinical"
            visit = Visit.clinical(ports, self.recordings_dir, store_path=self.places.clinic_store or self.store_path,
                                   bus=self.bus, places=self.places, operator=self.operator)
            if self.signed_in:
                visit.store.account = self.operator
            return visit

        self._open(make, lambda v: {n: d.identity.as_dict() for n, d in v.rig.devices.items() if d.identity},
                   done, failed)

    # --- patient and course (clinical) ----------------------------------------------------------------------------
    def store_call(self, fn: Callable[[Any], Any], done: Done, failed: Failed) -> None:
        """Run fn(store) on the worker (the store's own thread)."""
        if self.visit is None:
            failed(UserError("Connect the devices first: the clinic store opens with them."))
            return
        visit = self.visit
        self.tasks.run(lambda: fn(visit.store), done, failed)

    def plan_course(self, course_id: int, pseudonym: str, done: Done, failed: Failed) -> None:
        """Plan today's visit of a course with the dose engine. done(plan)."""
        visit = self.visit
        if visit is None:
            failed(UserError("Connect the devices first: the clinic store opens with them."))
            return
        self.tasks.run(lambda: visit.plan_course(course_id, pseudonym), done, failed)

    # --- plan -----------------------------------------------------------------------------------------------------
    def override(self, area_id: int, field: str, value: float, reason: str) -> SessionPlan:
        """Change one number within its bounds (GUI thread: pure logic). UserError says what is wrong."""
        if self.visit is None:
            raise UserError("There is no plan to change yet.")
        self.visit.operator = self.operator
        return self.visit.override(area_id, field, value, reason)

    def steps(self) -> list[Step]:
        assert self.visit is not None
        return self.visit.steps()

    # --- treatment ------------------------------------------------------------------------------------------------
    def begin_treatment(self, done: Done, failed: Failed) -> None:
        """Recording, session (journalled 'in progress'), connect, load the plan, arm. done(steps)."""
        visit = self.visit
        if visit is None:
            failed(UserError("Choose a patient and a plan first."))
            return
        try:
            visit.check_plan()
        except UserError as exc:
            failed(exc)
            return
        visit.operator = self.operator

        def begun(steps: object) -> None:
            rec = visit.rig.recorder
            if rec is not None:  # one session clock: the live plots count from the recording's time 0
                self.buffers.clear(rec.t0_host_s)
                for listener in self.session_t0_listeners:
                    listener(rec.t0_host_s)
            done(steps)

        self.tasks.run(visit.begin, begun, failed)

    def run_next_step(self, done: Done, failed: Failed) -> None:
        visit = self.visit
        if visit is None or visit.session is None:
            failed(UserError("Start the treatment first."))
            return
        if visit.session.state == State.PAUSED:
            failed(SessionError("The session is paused: reset the interlocks if any, then press Resume."))
            return
        if visit.session.next_step is None:
            failed(SessionError("Every step is done: press End session."))
            return
        self.tasks.run(visit.run_step, done, failed)

    def stop(self, source: str) -> None:
        """The big STOP: both devices stopped by the safety monitor now; the session pauses."""
        if self.visit is not None:
            self.visit.stop(source)

    def active_devices(self) -> list[str]:
        """Devices whose latest telemetry still shows them active (a pen brakes for a moment after STOP)."""
        return sorted(d for d, on in self.activity.active.items() if on)

    def scenario_action(self, action: str) -> None:
        """A scenario's session event (estop, pause, operator_stop), from the GUI thread: none of them waits."""
        session = self.session
        if session is None:
            return
        if action == "estop":
            session.estop("scenario")
        elif action == "pause":
            session.pause(self.operator, "paused by the scenario")
        elif action == "operator_stop":
            session.operator_stop(self.operator, "operator stop (scenario)")
        elif action == "reset":  # as in the headless runner; a refusal is recorded as interlock_reset_refused
            self.reset_interlocks(lambda _cleared: None, lambda _exc: None)
        elif action == "resume" and session.state == State.PAUSED and not self.needs_reset():
            if session.step_running:  # as the Resume button, taken once the interrupted step has ended
                QTimer.singleShot(50, lambda: self.scenario_action(action) if self.session is session else None)
                return
            session.resume(self.operator)
        # crash: only the headless runner kills itself; the window never does

    def held(self) -> str | None:
        """Why this session cannot treat again (its recording or the store failed: SafetyMonitor.hold), in words;
        None while it can. No reset, arm, start or resume can succeed then: only End session."""
        rig = self.rig
        return None if rig is None else rig.monitor.held

    def needs_reset(self) -> bool:
        """An interlock is latched, or a device reports a latched fault: Reset interlocks can act."""
        rig = self.rig
        doubt = self.visit is not None and self.visit.session is not None and bool(self.visit.session.sensor_doubt)
        return rig is not None and (rig.monitor.needs_reset() or doubt)  # a sensor in doubt: reset takes the check

    def reset_interlocks(self, done: Done, failed: Failed) -> None:
        """The operator's reset, on the worker: the monitor's latch and the devices' latched faults, only when each
        cause is gone; otherwise failed(ResetRefused) names the cause. done(cleared trips)."""
        visit = self.visit
        if visit is None:
            failed(SessionError("There is nothing to reset: no devices are connected."))
            return
        seen = visit.rig.monitor.causes_seen  # now, on the click: a STOP pressed after it is never cleared by it
        self.tasks.run(lambda: visit.reset_interlocks(seen), done, failed)

    def pause(self) -> None:
        """Stop both devices and pause; never waits (the stops are written, their answers recorded later)."""
        if self.visit is None or self.visit.session is None:
            raise SessionError("There is no session to pause.")
        self.visit.pause()

    def note_refused(self) -> str | None:
        """Why a note cannot go into the recording now, in a sentence; None while it can. After the recording failed
        a note would be in the log only, not in the file; after only the store failed the recording still takes it
        (what happened is worth a note, and the store is completed from the recording)."""
        rig = self.rig
        if rig is not None and rig.monitor.held is not None and rig.monitor.held_kind != AbortCause.STORE:
            return f"The note cannot be recorded because {rig.monitor.held_cause or 'the session is held'}."
        if self.saved is not None:
            return "The note cannot be recorded: the session has ended and its recording is closed."
        return None

    def add_note(self, text: str) -> None:
        """The operator's note into the recording (GUI thread: it only publishes an event); SessionError says why
        not when it cannot be recorded (`note_refused`)."""
        if self.visit is None or self.session is None:
            raise SessionError("There is no session to add a note to.")
        refused = self.note_refused()
        if refused is not None:
            raise SessionError(refused)
        self.visit.note(text)

    def resume(self) -> None:
        if self.visit is None or self.visit.session is None:
            raise SessionError("There is no session to resume.")
        self.visit.resume()

    def end_session(self, done: Done, failed: Failed) -> None:
        """Close the session (completed only if every step is done), save it, close the recording. done(Saved)."""
        visit = self.visit
        if visit is None or visit.session is None:
            failed(UserError("There is no session to end."))
            return
        if visit.session.state == State.TREATING:
            failed(SessionError("A step is running: press STOP (or wait for it to end) before ending the session."))
            return
        self.tasks.run(visit.end, done, failed)

    def save_responses(self, responses: list, done: Done, failed: Failed) -> None:
        visit = self.visit
        if visit is None or visit.saved is None:
            failed(UserError("End the session before entering its response."))
            return
        self.tasks.run(lambda: visit.save_responses(responses), done, failed)

    def course_history(self, done: Done, failed: Failed) -> None:
        visit = self.visit
        if visit is None:
            failed(UserError("There is no course open."))
            return
        self.tasks.run(lambda: (visit.store.history(visit.course.id), visit.store.areas(visit.course.patient_id)),
                       done, failed)

    def reset(self, done: Done, failed: Failed) -> None:
        """Back to the start page: the visit (devices, recording, store) is closed; the next mode starts afresh."""
        if self.visit is not None and self.visit.is_open():
            failed(UserError("A session is open: end it (End session) before leaving the treatment."))
            return

        def cleared(_: object) -> None:
            self.buffers.clear()
            self.activity.active.clear()
            done(None)

        self.tasks.run(self._release, cleared, failed)

    # --- teardown -------------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop everything (blocking: at window close only)."""
        # armed or paused too: a step may be starting on the worker as the window closes (a fresh tester of issue 12:
        # closed as Start next step was pressed, the light then gave its whole dose): the E-stop's gates hold it
        if self.session is not None and self.session.state in (State.ARMED, State.TREATING, State.PAUSED):
            self.session.estop("window closed")
        self.tasks.run(self._release, lambda _: None, lambda _: None)
        self.tasks.shutdown(wait=True)
        self.bridge.timer.stop()
