"""What the window does with the rig, the store and the session, in the order the headless runner uses.

store → plan → steps from the plan → recording → session → connect/load/arm → steps → saving. Everything that waits
on a device or the disk runs on the controller's one worker thread (`Tasks`); results come back on the GUI thread.
STOP, pause, resume and reset are called from the GUI thread: they only write stop frames or change state.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workstation.bus import SessionBus
from workstation.dose import SessionPlan, override
from workstation.errors import UserError
from workstation.plotbuffer import PlotBuffers
from workstation.rig import Rig
from workstation.session import Session, SessionError, State, Step
from workstation.ui.bus_bridge import ActivityWatch, BusBridge, Tasks
from workstation.ui.plots import plotted_channels

Done = Callable[[Any], None]
Failed = Callable[[Exception], None]


@dataclass(frozen=True)
class Places:
    """Where the window's files go beyond recordings_dir/store_path (from the settings, workstation.settings): the
    clinic store for clinical mode, the recordings folder of simulated sessions, the clinic's protocol folders."""

    clinic_store: Path | None = None
    training_recordings: Path | None = None
    protocol_dirs: tuple[Path, ...] = ()


@dataclass
class Saved:
    summary: dict
    recording: Path | None
    sha256: str | None
    session_id: int


class SessionController:
    def __init__(self, bus: SessionBus, buffers: PlotBuffers, bridge: BusBridge, tasks: Tasks, *,
                 recordings_dir: Path, store_path: Path | None = None, places: Places | None = None) -> None:
        self.bus, self.buffers, self.bridge, self.tasks = bus, buffers, bridge, tasks
        self.activity = ActivityWatch()
        bus.subscribe(self.activity)
        self.recordings_dir = Path(recordings_dir)
        self.store_path = store_path
        self.places = places or Places()
        self.mode = "simulation"
        self.rig: Rig | None = None
        self.store: Any = None
        self.library: Any = None
        self.scenario: Any = None
        self.course: Any = None
        self.plan: SessionPlan | None = None
        self.session: Session | None = None
        self.saved: Saved | None = None
        self.operator = "operator"
        self.pseudonym = ""
        self.pass_duration_s = 2.0
        self._tmp: tempfile.TemporaryDirectory | None = None

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

    # --- bring-up (worker) ----------------------------------------------------------------------------------------
    def _open_store(self, training: bool) -> None:
        from workstation.protocols import load_library
        from workstation.store import ClinicStore

        self.library = load_library(self.places.protocol_dirs)
        if self.library.tables is None:
            raise UserError("The reference tables did not load; run `python main.py protocols check`.")
        path = self.store_path if training or self.places.clinic_store is None else self.places.clinic_store
        if path is None and training:
            self._tmp = tempfile.TemporaryDirectory(prefix="cicatrix-training-")
            path = Path(self._tmp.name) / "training.sqlite3"
        self.store = ClinicStore.open(path, training=training, recordings_root=self._recordings_dir())

    def _recordings_dir(self) -> Path:
        training = self.places.training_recordings if self.mode != "clinical" else None
        return training or self.recordings_dir

    def _release(self) -> None:
        """Worker: close what an earlier or failed bring-up left open (one rig, one monitor on the bus at a time)."""
        rig, store, self.rig, self.store = self.rig, self.store, None, None
        if rig is not None:
            rig.close()  # also takes its safety monitor off the bus
        if self.session is not None:
            self.session.close()
            self.session = None
        if store is not None:
            store.close()

    def _bring_up(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        def work() -> Any:
            self._release()
            try:
                return fn()
            except BaseException:
                self._release()
                raise

        return work

    def start_simulation(self, scenario_path: Path, done: Done, failed: Failed) -> None:
        """A training patient from a scenario file: store, emulated rig, plan. done(plan)."""
        from workstation.runner import prepare_plan
        from workstation.scenario import load_scenario

        def work() -> SessionPlan:
            scenario = load_scenario(scenario_path)
            self.scenario, self.mode, self.pseudonym = scenario, "simulation", scenario.pseudonym
            self.operator, self.pass_duration_s = scenario.operator_id, scenario.pass_duration_s
            self._open_store(training=True)
            self.library.get(scenario.protocol_id)
            self.rig = Rig.simulation(seed=scenario.seed, light_warmup_s=scenario.light_warmup_s, bus=self.bus)
            model = self.rig.devices["light"].identity.model
            self.course, plan = prepare_plan(scenario, self.store, self.library, model)
            self.plan = plan
            return plan

        self.tasks.run(self._bring_up(work), done, failed)

    def start_clinical(self, ports: dict[str, str], done: Done, failed: Failed) -> None:
        def work() -> dict[str, dict]:
            missing = [f"{name} ({port})" for name, port in ports.items() if not Path(port).exists()]
            if missing:
                raise UserError(f"No serial port {', '.join(missing)} on this computer. Check the cable and the "
                                "port name (for example /dev/ttyUSB0), then connect again.")
            self.mode = "clinical"
            self._open_store(training=False)
            self.rig = Rig.clinical(ports, bus=self.bus)
            return {n: d.identity.as_dict() for n, d in self.rig.devices.items() if d.identity}

        self.tasks.run(self._bring_up(work), done, failed)

    # --- patient and course (clinical) ----------------------------------------------------------------------------
    def store_call(self, fn: Callable[[Any], Any], done: Done, failed: Failed) -> None:
        """Run fn(store) on the worker (the store's own thread)."""
        if self.store is None:
            failed(UserError("Connect the devices first: the clinic store opens with them."))
            return
        self.tasks.run(lambda: fn(self.store), done, failed)

    def plan_course(self, course_id: int, pseudonym: str, done: Done, failed: Failed) -> None:
        """Plan today's visit of a course with the dose engine. done(plan)."""
        from workstation.dose import plan_next_session

        def work() -> SessionPlan:
            light = self.rig.devices.get("light") if self.rig else None
            model = light.identity.model if light is not None and light.identity else None
            self.course = self.store.course(course_id)
            self.plan = plan_next_session(self.store, self.library, course_id, dt.date.today(), device_model=model)
            self.pseudonym = pseudonym
            return self.plan

        self.tasks.run(work, done, failed)

    # --- plan -----------------------------------------------------------------------------------------------------
    def override(self, area_id: int, field: str, value: float, reason: str) -> SessionPlan:
        """Change one number within its bounds (GUI thread: pure logic). UserError says what is wrong."""
        if self.plan is None:
            raise UserError("There is no plan to change yet.")
        if self.session is not None:
            raise UserError("The treatment has started: the plan can no longer be changed.")
        self.plan = self.plan.with_area(override(self.plan.area(area_id), field, value, reason, self.operator))
        return self.plan

    def steps(self) -> list[Step]:
        assert self.plan is not None
        return [Step(**s, pass_duration_s=self.pass_duration_s) for s in self.plan.execution_steps()]

    # --- treatment ------------------------------------------------------------------------------------------------
    def begin_treatment(self, done: Done, failed: Failed) -> None:
        """Recording, session, connect, load the plan, arm. done(steps)."""
        plan, rig = self.plan, self.rig
        if plan is None or rig is None:
            failed(UserError("Choose a patient and a plan first."))
            return
        if plan.refused:
            failed(UserError(f"The dose engine refused this session: {plan.refusal.reason} "
                             f"(first allowed {plan.refusal.first_allowed_date})."))
            return
        steps = self.steps()
        if not steps:
            failed(UserError("The plan has nothing to treat today: "
                             + "; ".join([*plan.blocks, *plan.warnings] or ["no area can be treated"])))
            return

        def work() -> list[Step]:
            protocol = self.library.get(plan.protocol_id)
            pseudonym = self.pseudonym
            rig.start_recording(self._recordings_dir(), patient_pseudonym=pseudonym, operator_id=self.operator,
                                protocol_id=protocol.id, protocol_version=str(protocol.version), plan=plan.to_dict())
            session = Session(rig.bus, rig.devices, rig.monitor, operator_id=self.operator, abort_on_trip=False)
            session.connect(self.operator)
            session.load_plan(steps, self.operator)
            session.arm(self.operator)
            self.session = session
            return steps

        self.tasks.run(work, done, failed)

    def run_next_step(self, done: Done, failed: Failed) -> None:
        session = self.session
        if session is None:
            failed(UserError("Start the treatment first."))
            return
        if session.state == State.PAUSED:
            failed(SessionError("The session is paused: reset the interlocks if any, then press Resume."))
            return
        if session.next_step is None:
            failed(SessionError("Every step is done: press End session."))
            return
        self.tasks.run(lambda: session.run_step(self.operator), done, failed)

    def stop(self, source: str) -> None:
        """The big STOP: both devices stopped by the safety monitor now; the session pauses."""
        if self.session is not None:
            self.session.estop(source)
        elif self.rig is not None:
            self.rig.monitor.estop(source)

    def active_devices(self) -> list[str]:
        """Devices whose latest telemetry still shows them active (a pen brakes for a moment after STOP)."""
        return sorted(d for d, on in self.activity.active.items() if on)

    def scenario_action(self, action: str) -> None:
        """A scenario's session event (estop, pause, operator_stop), from the GUI thread: none of them waits."""
        if self.session is None:
            return
        if action == "estop":
            self.session.estop("scenario")
        elif action == "pause":
            self.session.pause(self.operator, "paused by the scenario")
        else:
            self.session.operator_stop(self.operator, "operator stop (scenario)")

    def reset_interlocks(self) -> list:
        """The operator's manual reset; refused while a device still reports itself active."""
        moving = self.active_devices()
        if moving:
            raise SessionError(f"The {' and the '.join(moving)} still report{'s' if len(moving) == 1 else ''} "
                               "activity: wait until it has stopped, then reset again.")
        return self.rig.monitor.reset(self.operator) if self.rig else []

    def pause(self) -> None:
        """Stop both devices and pause; never waits (the stops are written, their answers recorded later)."""
        if self.session is None:
            raise SessionError("There is no session to pause.")
        if self.session.state not in (State.TREATING, State.ARMED):
            raise SessionError(f"Only a running or armed session can pause (it is {self.session.state}).")
        self.session.pause(self.operator)

    def add_note(self, text: str) -> None:
        """The operator's note into the recording (GUI thread: it only publishes an event)."""
        if self.session is None:
            raise SessionError("There is no session to add a note to.")
        self.session.note(text, self.operator)

    def resume(self) -> None:
        if self.session is None:
            raise SessionError("There is no session to resume.")
        self.session.resume(self.operator)

    def end_session(self, done: Done, failed: Failed) -> None:
        """Close the session (completed if it can be, else aborted), save it to the store, close the recording."""
        session, rig = self.session, self.rig
        if session is None or rig is None:
            failed(UserError("There is no session to end."))
            return
        if session.state == State.TREATING:
            failed(SessionError("A step is running: press STOP (or wait for it to end) before ending the session."))
            return

        def work() -> Saved:
            if session.state in (State.ARMED, State.PAUSED):
                session.finish(self.operator)
            session.abort(self.operator, "ended by the operator")  # no-op once completed
            from workstation.runner import store_treatments

            model = rig.devices["light"].identity.model if rig.devices["light"].identity else None
            assert self.plan is not None
            session_id = self.store.add_session(self.course.id, dt.date.today(), device_model=model,
                                                plan=self.plan.to_dict())
            store_treatments(self.store, session_id, session)
            recording, sha = rig.stop_recording() or (None, None)
            if recording is not None:
                self.store.link_recording(session_id, recording, sha)
            self.saved = Saved(session.summary(), recording, sha, session_id)
            return self.saved

        self.tasks.run(work, done, failed)

    def save_responses(self, responses: list, done: Done, failed: Failed) -> None:
        saved = self.saved
        if saved is None:
            failed(UserError("End the session before entering its response."))
            return

        def work() -> int:
            for r in responses:
                self.store.add_response(saved.session_id, r)
            return len(responses)

        self.tasks.run(work, done, failed)

    def course_history(self, done: Done, failed: Failed) -> None:
        self.tasks.run(lambda: (self.store.history(self.course.id), self.store.areas(self.course.patient_id)),
                       done, failed)

    def reset(self, done: Done, failed: Failed) -> None:
        """Back to the start page: devices, recording and store closed; the next mode starts afresh."""
        if self.session is not None and self.saved is None and self.session.state not in (State.COMPLETED,
                                                                                           State.ABORTED):
            failed(UserError("A session is open: end it (End session) before leaving the treatment."))
            return

        def work() -> None:
            self._release()
            self.scenario = self.course = self.plan = self.session = self.saved = None
            self.pseudonym = ""

        def cleared(_: object) -> None:
            self.buffers.clear()
            self.activity.active.clear()
            done(None)

        self.tasks.run(work, cleared, failed)

    # --- teardown -------------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop everything (blocking: at window close only)."""
        if self.session is not None and self.session.state == State.TREATING:
            self.session.estop("window closed")

        def work() -> None:
            if self.rig is not None:
                self.rig.close()
            if self.store is not None:
                self.store.close()

        self.tasks.run(work, lambda _: None, lambda _: None)
        self.tasks.shutdown(wait=True)
        self.bridge.timer.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
