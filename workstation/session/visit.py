"""One visit, one place: the service the window and the headless runner both use (no Qt here).

find or create the patient → plan → recording → session (journalled in the store) → steps → pause / stop / reset /
resume → end → save. Each mode (training, clinical) opens a fresh Visit with its own store, rig and session; nothing
of one visit survives into the next. Methods that wait on a device or the disk (open, begin, run_step, run_all,
reset_interlocks, end, close) belong on a worker thread; pause, stop and resume never wait.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.base import DeviceError
from drivers.codes import AbortCause
from workstation.bus import Event, SessionBus, now_s
from workstation.errors import UserError, signal_behind
from workstation.recording.share import recording_saved
from workstation.session import roles
from workstation.session.course_lease import CourseLease
from workstation.session.journal import (
    STORE_FAILED,
    Closed,
    close_crashed_sessions,
    journal_end,
    journal_start,
    journal_steps,
    store_failure_later,
    treatments_of,
)
from workstation.session.outcome import trip_rows
from workstation.session.planning import plan_visit, prepare_training_plan
from workstation.session.rig import Rig, close_recording
from workstation.session.session import Session, SessionError, State, Step, StepRefused, StepResult
from workstation.session.step_runs import STEP_END_WAIT_S
from workstation.store.connection import StoreWriteFailed

log = logging.getLogger(__name__)


class StartRefused(UserError):
    """The treatment could not start (nothing was given; the session is closed as aborted in the store and its
    recording linked). `cause`: the AbortCause the headless runner's exit code follows."""

    def __init__(self, message: str, cause: AbortCause, closed: Any = None) -> None:
        super().__init__(message)
        self.cause, self.closed = cause, closed  # closed: the recording's rig.Closed (path None if none was made)


def _start_refused_words(exc: BaseException, latched: dict) -> str:
    if latched:
        from workstation.ui.wording import interlock_name

        names = ", ".join(f"{interlock_name(t.interlock)} on the {d}" for d, t in latched.items())
        return (f"The treatment could not start: an interlock is latched ({names}). Check the cause, then reset the "
                "interlocks and start again.")
    return f"The treatment could not start: {exc}"


@dataclass(frozen=True)
class Places:
    """Where a visit's files go beyond its recordings folder and store (workstation.settings): the clinic store for
    clinical mode, simulated sessions' recordings folder, the clinic's protocol folders and recordings share."""

    clinic_store: Path | None = None
    training_recordings: Path | None = None
    protocol_dirs: tuple[Path, ...] = ()
    clinic_recordings: Path | None = None  # the clinic's recordings share (workstation/recording/share.py)


@dataclass
class Saved:
    summary: dict
    recording: Path | None
    sha256: str | None  # None when no checksum could be written (a full disk)
    session_id: int
    recording_failure: str | None = None  # why the recorder stopped early or could not close the file
    checksum_words: str = ""  # "sha256 <hex>" or "sha256 not written: <why>" (rig.Closed.checksum_words)
    store_failure: str | None = None  # why the store could not take the session (then completed at the next start)


def _load_library(protocol_dirs: tuple[Path, ...] = ()):
    from workstation.protocols import load_library

    library = load_library(protocol_dirs)
    if library.tables is None:
        from workstation.progname import command

        raise UserError(f"The reference tables did not load; run `{command('protocols check')}`.")
    return library


class Visit:
    """A visit's store, rig, plan and session. Build one with `training` or `clinical`; `close` releases it all."""

    def __init__(self, *, mode: str, store: Any, library: Any, rig: Rig, recordings_dir: Path,
                 operator: str = "operator", tmp: tempfile.TemporaryDirectory | None = None) -> None:
        self.mode, self.store, self.library, self.rig = mode, store, library, rig
        self.recordings_dir = Path(recordings_dir)
        self.operator = operator
        self.pseudonym, self.scenario, self.course, self.plan = "", None, None, None
        self.session: Session | None = None
        self.session_id: int | None = None
        self.saved: Saved | None = None
        self.closed_unsaved: tuple[str, list] | None = None  # (outcome, what the recording showed): _close_unsaved
        self.store_failure: str | None = None  # the store could not take this session's journal (`_store_failed`)
        self.pass_duration_s = 2.0
        self.crashed: list[Closed] = []
        self._identity: Any = None  # the patient's identity on file, for the free-text guard (never stored here)
        self.lease: Any = None  # the course's lease while treatment runs (workstation.session.course_lease, issue 17)
        self._tmp = tmp

    @property
    def operator(self) -> str:
        """Who runs the visit (the signed-in account, or the trainee): the audit trail's actor (ClinicStore.actor)."""
        return self._operator

    @operator.setter
    def operator(self, who: str) -> None:
        self._operator = who
        self.store.actor = who

    # --- opening (worker) -------------------------------------------------------------------------------------
    @classmethod
    def training(cls, scenario, recordings_dir: Path, *, store_path: Path | None = None,
                 bus: SessionBus | None = None, places: Places | None = None) -> Visit:
        """A training visit from a scenario: the training store (a temporary one if no path), the emulated rig,
        crashed sessions closed, the scenario's patient found or entered, today's plan."""
        from workstation.store import ClinicStore

        library = _load_library((places or Places()).protocol_dirs)
        library.get(scenario.protocol_id)  # a UserError naming the protocol if it is unknown
        tmp = None
        if store_path is None:
            tmp = tempfile.TemporaryDirectory(prefix="cicatrix-training-")
            store_path = Path(tmp.name) / "training.sqlite3"
        store = ClinicStore.open(store_path, training=True, recordings_root=Path(recordings_dir))
        rig = None
        try:
            crashed = close_crashed_sessions(store)
            rig = Rig.simulation(seed=scenario.seed, light_warmup_s=scenario.light_warmup_s, bus=bus)
            visit = cls(mode="simulation", store=store, library=library, rig=rig, recordings_dir=recordings_dir,
                        operator=scenario.operator_id, tmp=tmp)
            visit.crashed = crashed
            visit.scenario, visit.pseudonym = scenario, scenario.pseudonym
            visit.pass_duration_s = scenario.pass_duration_s
            visit.course, plan = prepare_training_plan(scenario, store, library, visit.light_model())
            from workstation.store.calibration import apply_to_plan  # dosimetry QA: a warning in training

            visit.plan = apply_to_plan(store, rig.device_of_kind(roles.LIGHT), plan, dt.date.today())
        except BaseException:
            if rig is not None:
                rig.close()
            store.close()
            if tmp is not None:
                tmp.cleanup()
            raise
        return visit

    @classmethod
    def clinical(cls, ports: dict[str, str], recordings_dir: Path, *, store_path: Path | None = None,
                 bus: SessionBus | None = None, operator: str = "operator", places: Places | None = None) -> Visit:
        """A clinical visit: the clinic store (crashed sessions closed first) and the real devices on `ports`."""
        from workstation.session.rig import check_ports_distinct
        from workstation.store import ClinicStore

        check_ports_distinct(ports)
        missing = [f"{name} ({port})" for name, port in ports.items() if not Path(port).exists()]
        if missing:
            raise UserError(f"No serial port {', '.join(missing)} on this computer. Check the cable and the "
                            "port name (for example /dev/ttyUSB0), then connect again.")
        library = _load_library((places or Places()).protocol_dirs)
        store = ClinicStore.open(store_path, training=False, recordings_root=Path(recordings_dir))
        try:
            crashed = close_crashed_sessions(store)
            rig = Rig.clinical(ports, bus=bus)
        except BaseException:
            store.close()
            raise
        visit = cls(mode="clinical", store=store, library=library, rig=rig, recordings_dir=recordings_dir,
                    operator=operator)
        visit.crashed = crashed
        return visit

    def light_model(self) -> str | None:
        light = self.rig.device_of_kind(roles.LIGHT)
        return light.identity.model if light is not None and light.identity else None

    def plan_course(self, course_id: int, pseudonym: str) -> Any:
        """Plan today's visit of a course; areas whose healing was confirmed are released for light."""
        self.course = self.store.course(course_id)
        self.plan = plan_visit(self.store, self.library, course_id, dt.date.today(), device_model=self.light_model(),
                               light=self.rig.device_of_kind(roles.LIGHT))
        self.pseudonym = pseudonym
        try:  # kept for the visit so notes and reasons typed on the GUI thread can be checked without the store
            self._identity = self.store.identity(self.course.patient_id)
        except UserError:  # not readable with this workstation's key: nothing to compare with
            self._identity = None
        return self.plan

    def guard_text(self, text: str, what: str) -> None:
        """UserError if `text` (a note, a reason) contains the identity of this visit's patient (GUI or worker
        thread: it uses the identity read when the visit was planned)."""
        from workstation.store.identity import refuse_identity

        refuse_identity(text, self._identity, what)

    def note(self, text: str) -> None:
        """The operator's note into the recording, once it has passed the free-text guard."""
        self.guard_text(text, "note")
        self._need_session().note(text, self.operator)

    def override(self, area_id: int, field: str, value: float, reason: str) -> Any:
        from workstation.dose import override

        if self.plan is None:
            raise UserError("There is no plan to change yet.")
        if self.session is not None:
            raise UserError("The treatment has started: the plan can no longer be changed.")
        self.guard_text(reason, "reason")
        self.plan = self.plan.with_area(override(self.plan.area(area_id), field, value, reason, self.operator))
        return self.plan

    def steps(self) -> list[Step]:
        if self.plan is None:
            raise UserError("Choose a patient and a plan first.")
        return [Step(**s, pass_duration_s=self.pass_duration_s) for s in self.plan.execution_steps()]

    # --- treatment (worker) -----------------------------------------------------------------------------------
    def check_plan(self) -> list[Step]:
        """The plan's steps, or a UserError saying why there is nothing to treat (GUI thread: pure logic)."""
        plan = self.plan
        if plan is None:
            raise UserError("Choose a patient and a plan first.")
        if plan.refused:
            first = plan.refusal.first_allowed_date.isoformat()
            reason = plan.refusal.reason.rstrip()
            raise UserError(f"The dose engine refused this session: {reason}"
                            + ("" if first in reason else f" (first allowed {first})."))
        steps = self.steps()
        if not steps:
            raise UserError("The plan has nothing to treat today: " + plan.nothing_to_treat_reason())
        return steps

    def begin(self, *, abort_on_trip: bool = False, t0_host_s: float | None = None) -> list[Step]:
        """Open the recording, write the session 'in progress' into the store, connect, load the plan and arm.
        `t0_host_s`: the session's time 0 on the monotonic clock (default: when the recording opens), so that a
        caller printing session times (the headless runner) and the file count from the same origin."""
        if self.session is not None:
            raise SessionError("The treatment has already started.")
        steps = self.check_plan()
        plan = self.plan
        protocol = self.library.get(plan.protocol_id)
        self.lease = CourseLease.take(self.store, self.course.id, self.operator, plan_version=plan.course_version,
                                      defer=True)  # checked now, written with the session's start: one commit
        try:
            rec = self.rig.start_recording(self.recordings_dir, patient_pseudonym=self.pseudonym,
                                           operator_id=self.operator, protocol_id=protocol.id,
                                           protocol_version=str(protocol.version), plan=plan.to_dict(),
                                           t0_host_s=t0_host_s)
            self.session_id = journal_start(self.store, plan, dt.date.today(), device_model=self.light_model(),
                                            recording_path=rec.path, lease=self.lease)
        except BaseException:  # e.g. a plan made stale by a start saved a moment ago: nothing started
            close_recording(self.rig)
            self._release_lease()
            raise
        session = Session(self.rig.bus, self.rig.devices, self.rig.monitor, operator_id=self.operator,
                          abort_on_trip=abort_on_trip)
        try:
            session.connect(self.operator)
            session.load_plan(steps, self.operator)
            session.arm(self.operator)
        except BaseException as exc:  # nothing was given: close the journal row and the recording, allow a retry
            latched = self.rig.monitor.tripped  # a device not connected (rig.connect's UserError) is a device's
            device = isinstance(exc, DeviceError) or isinstance(exc.__cause__, DeviceError)  # failure: exit 5, not 2
            cause = AbortCause.INTERLOCK if latched else AbortCause.DEVICE if device else AbortCause.BAD_INPUT
            session.abort(self.operator, f"the treatment could not start: {exc}", cause)
            session.close()
            self.store.close_session(self.session_id, "aborted", session.abort_reason)
            closed = close_recording(self.rig)
            if closed.path is not None and closed.sha256 is not None:
                self.store.link_recording(self.session_id, closed.path, closed.sha256)
            self.session_id = None
            self._release_lease()
            if isinstance(exc, SystemExit) or (isinstance(exc, UserError) and not device) or signal_behind(exc):
                raise
            raise StartRefused(_start_refused_words(exc, latched), cause, closed) from exc
        self.session = session
        return steps

    def _journal(self) -> None:
        if self.session is not None and self.session_id is not None and self.store_failure is None:
            try:
                journal_steps(self.store, self.session_id, self.session)
            except StoreWriteFailed as exc:
                self._store_failed(exc)

    def _store_failed(self, exc: StoreWriteFailed, *, ended: bool = False) -> None:
        """The store cannot take this session's journal (disk full, server gone): a session not `ended` stops as for a
        failed recording (E-stop, the monitor held); what becomes of it is journal.store_failure_later's words."""
        if self.store_failure is not None:
            return
        later, failed = store_failure_later(temporary=self._tmp is not None, ended=ended), f"the {self.store.role} store could not be written"
        self.store_failure = f"{failed.capitalize()} ({exc.why}): {later}."
        if not ended:
            self.rig.monitor.estop("store failed")
            self.rig.monitor.hold(f"{failed.capitalize()}, so the doses of this session cannot be saved for the next "
                                  f"plan: this session cannot treat again. End it; {later}.", failed, AbortCause.STORE)
            self.rig.bus.publish_event(Event(now_s(), "alarm", "high", "session", f"{failed.capitalize()} ({exc.why})"
                                             ": the devices were stopped.", {"cause": STORE_FAILED}))

    def run_step(self) -> StepResult:
        session = self._need_session()
        if session.state == State.PAUSED:
            raise StepRefused("The session is paused: reset the interlocks if any, then press Resume.")
        if session.next_step is None:
            raise StepRefused("Every step is done: press End session.")
        self._take_sensor_checks()
        try:
            return session.run_step(self.operator)
        finally:
            self._journal()

    def run_all(self, before_step: Callable[[], None] = lambda: None) -> State:
        """Every remaining step in order (headless), `before_step()` before each; the store is journalled after each."""
        session = self._need_session()
        if session.run_steps(self.run_step, before_step) == State.ARMED and session.next_step is None:
            session.finish(self.operator)
        return session.state

    def pause(self, why: str = "paused by the operator") -> None:
        session = self._need_session()
        if session.state not in (State.TREATING, State.ARMED):
            raise SessionError(f"Only a running or armed session can pause (it is {session.state}).")
        session.pause(self.operator, why)

    def resume(self) -> None:
        self._need_session().resume(self.operator)

    def _take_sensor_checks(self) -> None:
        """A light whose dose sensor a trip put in doubt is trusted again once a radiometer check was recorded in
        the store after the trip; its backup times then use the irradiance that check measured. Reads the store:
        on the worker (reset_interlocks, run_step), never the GUI thread."""
        from workstation.store.calibration import check_since

        session = self.session
        if session is None:
            return
        for device, at in list(session.sensor_doubt_at.items()):
            dev = self.rig.devices.get(device)
            ident = getattr(dev, "identity", None)
            check = check_since(self.store, ident.serial_number, at) if ident is not None else None
            if check is not None:
                dev.calibrated_irradiance_mw_cm2 = check.measured_mw_cm2
                session.sensor_checked(device, check.who, f"{check.measured_mw_cm2:g} mW/cm² measured with "
                                       f"{check.reference_meter} on {check.checked_on}")

    def stop(self, source: str) -> None:
        """The big STOP: both devices stopped by the safety monitor now; the session pauses."""
        if self.session is not None:
            self.session.estop(source)
        else:
            self.rig.monitor.estop(source)

    def reset_interlocks(self, seen: int | None = None) -> list:
        """The operator's reset: the monitor's latch and every device's latched fault, only when each cause is
        gone (ResetRefused names the one that remains: disconnected, silent, still active, hot, no contact, or
        what the device itself refuses) and none came after `seen` (SafetyMonitor.causes_seen as asked)."""
        cleared = self.rig.monitor.reset_checked(self.operator, seen)
        self._take_sensor_checks()
        session = self.session
        if session is not None and session.sensor_doubt:
            session.refuse_if_sensor_in_doubt(next(iter(session.sensor_doubt)))  # raises, saying what to do
        return cleared

    def end(self) -> Saved:
        """Close the session (completed only if every step is done), its journal row, its recording, and link it."""
        session = self._need_session()
        if session.state == State.TREATING:
            raise SessionError("A step is running: press STOP (or wait for it to end) before ending the session.")
        if self.saved is not None:
            return self.saved
        if session.state in (State.ARMED, State.PAUSED):
            session.finish(self.operator)
        session.abort(self.operator, "ended by the operator", AbortCause.OPERATOR)  # no-op once it has ended
        session.wait_step_ended(STEP_END_WAIT_S)  # a step that started meanwhile was stopped: its end in the file
        summary = session.summary()
        assert self.session_id is not None
        if self.store_failure is None:
            try:
                journal_end(self.store, self.session_id, treatments_of(session), summary["state"],
                            summary["abort_reason"], lease=self.lease)
            except StoreWriteFailed as exc:
                self._store_failed(exc)
        closed = close_recording(self.rig)
        summary["trips"] = trip_rows(session.monitor.trips, closed.recorded_trips)  # each said in the file or not
        recording, sha = closed.path, closed.sha256
        if recording is not None and sha is not None and self.store_failure is None:
            try:
                if self.store.recording(self.session_id) is None:
                    self.store.link_recording(self.session_id, recording, sha)  # no checksum (full disk): not linked
                recording_saved(self.store, self.session_id)  # to the clinic's share, by its own thread
            except StoreWriteFailed as exc:
                self._store_failed(exc, ended=True)
        session.close()
        self.saved = Saved(summary, recording, sha, self.session_id, closed.failure, closed.checksum_words,
                           self.store_failure)
        self._release_lease()
        return self.saved

    def _release_lease(self) -> None:  # every ending: saved, failed start, closed mid-session, SIGINT, SIGTERM
        if self.lease is not None:
            try:
                self.lease.release()
            except StoreWriteFailed as exc:  # it lapses by itself (leases.LEASE_TIMEOUT_S) once no room renews it
                log.warning("the lease of course %s was not released: %s", self.course.id, exc)
            self.lease = None

    def save_responses(self, responses: list) -> int:
        if self.saved is None:
            raise UserError("End the session before entering its response.")
        for r in responses:
            self.store.add_response(self.saved.session_id, r)
        return len(responses)

    def is_open(self) -> bool:
        """A session has started and is not ended and saved."""
        return self.session is not None and self.saved is None and self.session.state not in (State.COMPLETED,
                                                                                                State.ABORTED)

    def _need_session(self) -> Session:
        if self.session is None:
            raise SessionError("Start the treatment first.")
        return self.session

    def _close_unsaved(self) -> None:
        """A session that ends without End session (SIGINT, SIGTERM, an exception, the window closed): stop the
        devices, journal what the steps recorded, then what the closed recording's telemetry shows was delivered
        (a step cut off mid-run has no result of its own), and close the journal row with its outcome."""
        from workstation.session.journal import journal_recording

        session = self.session
        assert session is not None and self.session_id is not None
        if self.is_open():
            session.operator_stop(self.operator, "the program was closed during the session")
        self._journal()
        recording = close_recording(self.rig).path
        found, _readable = journal_recording(self.store, self.session_id, self.course.id, recording)
        state = session.outcome()
        if found and state == "aborted":  # the recording shows a delivery the session's results do not hold
            state = "partial"
        self.closed_unsaved = (state, found)  # what the runner's summary says (one rule, here)
        self.store.close_session(self.session_id, state, session.abort_reason or "closed before the session was saved")

    # --- teardown (worker) ------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the devices, close the recording (an unended session stays 'in progress' until the next start closes
        it), the rig and the store."""
        try:
            if self.session is not None and self.saved is None and self.session_id is not None:
                try:  # not ended and saved (closed mid-session, or the end failed): the journal says what happened
                    self._close_unsaved()
                except Exception:  # noqa: BLE001 - teardown goes on; the next start closes it from the recording
                    log.exception("journal of session %s not closed", self.session_id)
            if self.session is not None:
                self.session.close()
            self.rig.close()
        finally:
            try:
                self._release_lease()
            finally:
                self.store.close()
            if self._tmp is not None:
                self._tmp.cleanup()
