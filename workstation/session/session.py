"""One combined session as a state machine: it drives the devices from the plan, step by step.

States: idle → connected → plan_loaded → armed → treating ⇄ paused → completed | aborted. Every transition is a
`state` event in the recording saying who or what caused it. The session never evaluates interlocks itself: the
safety monitor does, on the reader threads; the session reacts to its trips (pause, or abort in headless runs) and
refuses to continue until the operator resets them.

Methods that wait (`run_step`, `run_all`) are meant for a worker thread; `pause`, `operator_stop`, `estop` and the
queries are safe from any thread and never wait on a device for more than a command's timeout.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime

from drivers.base import DeviceError, SerialDevice
from drivers.codes import AbortCause, InterlockCause
from workstation.bus import BaseSink, Event, SessionBus, now_s
from workstation.progname import command
from workstation.session import roles
from workstation.session.outcome import delivered_by_runs, merge_runs, session_outcome, summarize
from workstation.session.safety import SafetyMonitor, StepLimits, Trip
from workstation.session.step_runs import INACTIVE_CONFIRM_S, Exposure, Interrupt, StepRuns
from workstation.session.steps import ALLOWED_TRANSITIONS, SessionError, State, Step, StepRefused, StepResult
from workstation.terminal import quoted
from workstation.words import counted

log = logging.getLogger(__name__)

NOTE_MAX_CHARS = 500
# Trips that put a device's own dose reading in doubt: a sensor reading low stops at the backup time, and a reading
# the driver rejected is no reading at all. "What is left" of the step would be measured by the same sensor, so
# no more light from that device in this session until a radiometer check is recorded (`sensor_checked`). The pen
# measures no dose: its implausible readings trip and reset as any other interlock.
SENSOR_DOUBT_INTERLOCKS = (InterlockCause.BACKUP_TIME, InterlockCause.SENSOR_IMPLAUSIBLE)


class Session(StepRuns, BaseSink):
    def __init__(self, bus: SessionBus, devices: dict[str, SerialDevice], monitor: SafetyMonitor, *,
                 operator_id: str = "", abort_on_trip: bool = False) -> None:
        """`devices` by name; which is the light and which the pen comes from their drivers' kinds (roles.py)."""
        self.bus = bus
        self.devices = devices
        self.light = roles.named_of_kind(devices, roles.LIGHT)  # the device names of the two roles (None: absent)
        self.pen = roles.named_of_kind(devices, roles.NEEDLING)
        self._channels = roles.active_channels(devices)
        self.monitor = monitor
        self.operator_id = operator_id
        self.abort_on_trip = abort_on_trip
        self.steps: list[Step] = []
        self.results: list[StepResult] = []
        self.current = 0  # index of the next step to run
        self.area_dose_mj_cm2: dict[str, float] = {}
        self.abort_reason = ""
        self.abort_cause = AbortCause.NONE  # why the session was aborted (the runner's exit code follows from it)
        self.pause_cause = AbortCause.NONE  # why it was last paused: what an abort of the paused session is due to
        self._state = State.IDLE
        self._lock = threading.RLock()
        self._interrupt = Interrupt(self.devices)
        self._step_idle = threading.Event()  # clear while a step's run is under way (run_step to its very end)
        self._step_idle.set()
        self._exposure = Exposure()
        self._last_seen: dict[str, tuple[float, bool]] = {}  # device -> (t_host_s, active) of its last block
        self._last_depth = (0.0, 0.0)  # (t_host_s, measured depth mm) of the pen's last block
        self.sensor_doubt: dict[str, Trip] = {}  # device -> the trip that put its dose sensor in doubt
        self.sensor_doubt_at: dict[str, str] = {}  # device -> when (UTC, ISO seconds): a check must be later
        monitor.on_trip.append(self._on_trip)
        bus.subscribe(self)

    # --- state machine ---------------------------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self._state

    def _transition(self, new: State, cause: str, who: str) -> None:
        with self._lock:
            old = self._state
            if new not in ALLOWED_TRANSITIONS[old]:
                raise SessionError(f"the session cannot go from {old} to {new} ({cause}).")
            self._state = new
        self.bus.publish_event(Event(now_s(), "state", "info", "session", f"session {old} → {new}: {cause}",
                                     {"from": str(old), "to": str(new), "cause": cause, "who": who}))

    def connect(self, who: str = "session") -> dict[str, dict]:
        """Connect and identify every device (already-connected ones are identified again)."""
        identities = {}
        for name, dev in self.devices.items():
            ident = dev.identify() if dev.connected else dev.connect()
            identities[name] = ident.as_dict()
        self._transition(State.CONNECTED, "devices connected and identified", who)
        return identities

    def load_plan(self, steps: list[Step], who: str) -> None:
        if not steps:
            raise SessionError("the plan has no steps: nothing to treat.")
        for s in steps:
            if s.modality not in roles.KINDS:
                raise SessionError(f"unknown modality {quoted(s.modality)} in the plan.")
            if self._device_for(s) is None:
                what = "light device" if s.modality == roles.LIGHT else "pen"
                raise SessionError(f"the plan has a {s.modality} step but no {what} is connected.")
        self.steps = list(steps)
        self.current = 0
        self._transition(State.PLAN_LOADED, f"plan of {counted(len(steps), 'step')} loaded", who)

    def _refuse_if_held(self) -> None:
        """No arm, start or resume once the monitor holds a cause no reset clears (the recording failed)."""
        if self.monitor.held is not None:
            raise SessionError(self.monitor.held)

    def arm(self, who: str) -> None:
        with self._lock:  # the look, the gate opened and the state moved in one step with pause and stop
            self._to_armed("arm", "before arming", "armed by the operator", who)

    def _to_armed(self, what: str, latched: str, reason: str, who: str,
                  also: Callable[[], None] = lambda: None) -> None:
        """Arm and resume, under the session's lock: refused while the interrupted step's run is still ending, while
        the monitor holds a cause no reset clears, or while an interlock is latched (`latched` ends that sentence);
        then `also()` may refuse, the session's start gate opens and the state moves to ARMED. One place for both,
        which were twins."""
        self._refuse_while_a_step_ends(what)
        self._refuse_if_held()
        if self.monitor.is_tripped():
            raise SessionError(f"an interlock is latched: check the cause, then reset the interlocks {latched}.")
        also()
        self._interrupt.clear()
        self._transition(State.ARMED, reason, who)

    @property
    def next_step(self) -> Step | None:
        return self.steps[self.current] if self.current < len(self.steps) else None

    # --- running steps (worker thread) -----------------------------------------------------------------------
    def run_all(self, who: str) -> State:
        """Run every remaining step in order; return the final state. For the headless runner."""
        if self._state == State.PLAN_LOADED:
            self.arm(who)
        if self.run_steps(lambda: self.run_step(who)) == State.ARMED and self.next_step is None:
            self._transition(State.COMPLETED, "all steps done", who)
        return self._state

    def run_steps(self, run_step: Callable[[], object], before_step: Callable[[], None] = lambda: None) -> State:
        """The headless loop: `before_step()` then `run_step()` while armed with a step left; returns the state. A
        step refused before it started (StepRefused: a trip, a hold, a pause or a stop from another thread came
        between the look at the state and the start) ends the loop with the session settled (`_settle_refused`),
        never with the error (a fresh tester of issue 12: a full disk between two steps, exit 1 and no summary)."""
        while self._state == State.ARMED and self.next_step is not None:
            before_step()
            try:
                run_step()
            except StepRefused as exc:
                self._settle_refused(str(exc))
                break
        return self._state

    def _settle_refused(self, why: str) -> None:
        """A start refused while armed: what latched is acted on here as the trip's hook does (it runs on the
        tripping thread after the latch, and may not have yet): aborted when trips abort, otherwise paused. Still
        armed with nothing latched, the session pauses with the refusal's words, so no loop asks again."""
        trips = self.monitor.tripped
        if trips and self.abort_on_trip:
            self._abort_for(next(iter(trips.values())))
            return
        with self._lock:
            if self._state == State.ARMED:
                cause = self.latched_cause() or why
                self._paused_for(AbortCause.INTERLOCK if trips or self.monitor.held else AbortCause.DEVICE)
                self._transition(State.PAUSED, cause, "safety" if trips else "session")

    def run_step(self, who: str) -> StepResult:
        """Run the next step (on a worker thread); StepRefused, in words, when it cannot start."""
        step = self.next_step
        if step is None:
            raise StepRefused("there is no step left to run.")
        # The look, the session's start gate opened and the move to TREATING are one step under the session's lock,
        # as a pause's or a stop's gate shut, STOP and state change are: a pause either finds the step started (its
        # STOP then follows any START: step_runs.Interrupt) or is found by it (refused). Apart, a pause that came
        # between the look and the clear was erased, and the step gave its whole dose after the pause's STOP (a
        # fresh tester of issue 12, eighteenth session).
        with self._lock:
            if self._state != State.ARMED:
                raise StepRefused(f"arm the session before starting a step (it is {self._state}).")
            try:
                self._refuse_if_held()
                if self.monitor.is_tripped():
                    raise SessionError("an interlock is latched: reset it before starting a step.")
                if step.modality == roles.LIGHT:
                    self.refuse_if_sensor_in_doubt(self.light)
            except SessionError as exc:
                raise StepRefused(str(exc)) from None
            self._interrupt.clear()
            self.pause_cause = AbortCause.NONE
            self._transition(State.TREATING, f"step {self.current + 1}: {step.describe()}", who)
            self._step_idle.clear()
        try:
            return self._run_started(step)
        finally:
            self._step_idle.set()

    @property
    def step_running(self) -> bool:
        """A step's run is under way, from its start to the end of its interruption (devices confirmed stopped)."""
        return not self._step_idle.is_set()

    def wait_step_ended(self, timeout_s: float) -> bool:
        """Wait (not on the GUI thread) until no step's run is under way; False if one still is after timeout_s."""
        return self._step_idle.wait(timeout_s)

    def _refuse_while_a_step_ends(self, what: str) -> None:
        """A pause leaves its step's run to end on its own thread (its devices confirmed stopped): until then no
        resume or arm, which would open the session's gate and clear the interrupt under that run and let it start
        its device after the pause's STOP (a fresh tester of issue 12, eighteenth session: Pause, then Resume 5 ms
        later, and the light gave its whole dose while the session said armed)."""
        if self.step_running:
            raise SessionError(f"the interrupted step is still ending (its devices are being confirmed stopped): "
                               f"{what} once it has ended.")

    def _run_started(self, step: Step) -> StepResult:
        self._step_event("step_started", step, f"step {self.current + 1} started: {step.describe()}")
        result = StepResult(step, "interrupted", t_start_s=now_s(), step_index=self.current)
        self._exposure = Exposure()  # this step's (a light step's run replaces it): never an earlier step's dose
        try:
            try:
                if step.modality == roles.LIGHT:
                    self._run_light(step, result)
                else:
                    self._run_needling(step, result)
            except DeviceError as exc:
                result.note = str(exc)
                self._paused_for(AbortCause.DEVICE)
                self._stop_all(f"device error: {exc}")
            finally:
                if result.outcome != "done":
                    t_stop = now_s()
                    self._stop_all("step interrupted")
                    # The step's limits stay until telemetry shows its device stopped (the pen brakes for ~50 ms); a
                    # device that does not stop in time then meets the idle limits, and the monitor stops it again.
                    device = self._device_for(step)
                    if device is not None and self.devices[device].connected:
                        self._wait_inactive(device, t_stop, INACTIVE_CONFIRM_S, interruptible=False)
                if self._exposure.started:  # an exposure cut short by a signal or an error: its dose as seen so far
                    result.delivered_dose_mj_cm2 = max(result.delivered_dose_mj_cm2, self._exposure.max_dose_mj_cm2)
                self.monitor.set_limits(StepLimits())
                result.t_end_s = now_s()
        except BaseException:  # a signal (the runner's Terminated, Ctrl+C) ends the step too: in the record all the same
            self._end_step(step, result)  # (a fresh tester of issue 12: no "step interrupted", a pass counted done)
            raise
        self._end_step(step, result)
        if result.outcome == "done":
            self.current += 1
            if self._state == State.TREATING:
                self._transition(State.ARMED, "step done", "session")
        elif self._state == State.TREATING:
            self._pause_after_interrupt(result.note or "step interrupted")
        return result

    def _end_step(self, step: Step, result: StepResult) -> None:
        """The step's result kept, its dose added to the area's, its `step_ended` event published."""
        self.results.append(result)
        if step.modality == roles.LIGHT:
            self.area_dose_mj_cm2[step.area_id] = (self.area_dose_mj_cm2.get(step.area_id, 0.0)
                                                    + result.delivered_dose_mj_cm2)
        self._step_event("step_ended", step, f"step {self.current + 1} {result.outcome}: {step.describe()}",
                         outcome=result.outcome, delivered_dose_mj_cm2=round(result.delivered_dose_mj_cm2, 3),
                         passes_done=result.passes_done, note=result.note)

    def delivered_in_step(self, index: int) -> tuple[float, int]:
        """(dose mJ/cm², passes) the step at `index` delivered over all its runs so far (a started pass counts)."""
        return delivered_by_runs(self.results, index)

    def _device_for(self, step: Step) -> str | None:
        """The name of the device a step's modality needs (the light for "light", the pen for "needling")."""
        return self.light if step.modality == roles.LIGHT else self.pen if step.modality == roles.NEEDLING else None

    def _limits_for(self, step: Step, target_mj_cm2: float = 0.0) -> StepLimits:
        return StepLimits(
            area_id=step.area_label,
            light_allowed=step.modality == roles.LIGHT,
            needling_allowed=step.modality == roles.NEEDLING,
            target_dose_mj_cm2=target_mj_cm2,
            area_dose_before_mj_cm2=self.area_dose_mj_cm2.get(step.area_id, 0.0),
            area_dose_cap_mj_cm2=step.area_dose_cap_mj_cm2,
            depth_limit_mm=step.depth_limit_mm,
        )

    # --- interruptions (any thread) --------------------------------------------------------------------------
    def pause(self, who: str, why: str = "paused by the operator") -> None:
        """Stop both devices and pause; the step in progress ends as interrupted. The gate, the STOP and the state
        change are one step with run_step's look (the session's lock)."""
        with self._lock:
            self._interrupt.set(f"the session was paused ({why})")
            self._paused_for(AbortCause.OPERATOR)
            self._stop_all(why)
            if self._state in (State.TREATING, State.ARMED):
                self._transition(State.PAUSED, why, who)

    def resume(self, who: str) -> None:
        with self._lock:  # one step with pause and stop, as run_step's look is
            if self._state != State.PAUSED:
                raise SessionError(f"only a paused session can resume (it is {self._state}).")
            self._to_armed("resume", "to resume", "resumed", who, self._refuse_if_next_light_in_doubt)

    def _refuse_if_next_light_in_doubt(self) -> None:
        step = self.next_step
        if step is not None and step.modality == roles.LIGHT:
            self.refuse_if_sensor_in_doubt(self.light)

    def sensor_checked(self, device: str, who: str, check: str) -> None:
        """A radiometer check was recorded after the trip that put `device`'s dose sensor in doubt: its light may
        be given again (the driver's backup times use the new check). `check` says which check, for the record."""
        trip = self.sensor_doubt.pop(device, None)
        self.sensor_doubt_at.pop(device, None)
        if trip is not None:
            self.bus.publish_event(Event(now_s(), "sensor_checked", "info", "operator",
                                         f"the {device}'s dose sensor was checked after the {trip.interlock} "
                                         f"interlock: {check}", {"device": device, "who": who,
                                                                "interlock": trip.interlock, "check": check}))

    def refuse_if_sensor_in_doubt(self, device: str | None) -> None:
        """Raises SessionError, in words, while `device`'s dose sensor is in doubt (SENSOR_DOUBT_INTERLOCKS)."""
        trip = self.sensor_doubt.get(device) if device is not None else None
        if trip is None:
            return
        given, _ = self.delivered_in_step(self.current)
        why = ("stopped at its backup time, so its dose sensor may read low" if trip.interlock == InterlockCause.BACKUP_TIME
               else "sent a reading that cannot be true, so its dose sensor is not to be trusted")
        raise SessionError(
            f"The {device} {why}: the dose it reported ({given:.1f} mJ/cm² in this step) may be less than the skin "
            f"received, and what is left would be measured by the same sensor. No more light from it in this "
            f"session until a radiometer check is recorded (`{command('devices check')}`) and the interlocks are "
            "reset again; or end the session (what was given is saved).")

    def operator_stop(self, who: str, why: str = "stopped by the operator") -> None:
        """End the session now: devices stopped, session aborted (one step with run_step's look, as pause is)."""
        with self._lock:
            self._interrupt.set(f"the session was stopped ({why})")
            self._stop_all(why)
            self.abort(who, why, AbortCause.OPERATOR)

    def estop(self, source: str) -> None:
        """Emergency stop from any thread: the monitor stops both devices at once; the session then pauses. It waits
        for no lock: the monitor's own start gate, shut before its STOP, holds whatever run_step does meanwhile."""
        self._interrupt.set(f"E-stop ({source})")
        self.monitor.estop(source)

    def note(self, text: str, who: str) -> Event:
        """An operator's note, recorded as a `note` event with who wrote it (e.g. "patient flinched at the jawline")."""
        text = " ".join(text.split())
        if not text:
            raise SessionError("the note is empty: type what you want kept in the recording.")
        if len(text) > NOTE_MAX_CHARS:
            raise SessionError(f"the note has {len(text)} characters; keep it under {NOTE_MAX_CHARS}.")
        event = Event(now_s(), "note", "info", "operator", text, {"who": who, "state": str(self._state)})
        self.bus.publish_event(event)
        return event

    def abort(self, who: str, why: str, cause: AbortCause) -> None:
        """End the session as aborted, `why` in words for people, `cause` the code (drivers/codes.py AbortCause) the
        runner's exit code follows; nothing once it has ended."""
        with self._lock:
            if self._state in (State.COMPLETED, State.ABORTED):
                return
            if self.step_running:  # a step started meanwhile (Visit.end's look raced it): it ends now, stopped
                self._interrupt.set(f"the session ended ({why})")
                self._stop_all(why)
            self.abort_reason = why
            self.abort_cause = cause
            self._transition(State.ABORTED, why, who)

    def finish(self, who: str) -> None:
        """End the session: completed when every step is done, otherwise aborted, saying how many steps were done
        (the summary's outcome then says partial when something was delivered). Ended while the monitor is held (a
        failed recording or store: SafetyMonitor.hold), the reason is that failure, not the operator."""
        self._stop_all("session finished")
        with self._lock:
            if self._state not in (State.ARMED, State.PAUSED, State.PLAN_LOADED):
                return
            if self.next_step is None and self.steps:
                self._transition(State.COMPLETED, "all steps done", who)
                return
            done = f"{sum(o['outcome'] == 'done' for o in self.step_outcomes())} of {counted(len(self.steps), 'step')}"
            held = self.monitor.held_cause
            if held is not None:
                self.abort(who, f"{held}, so it could not go on: {done} done",
                           self.monitor.held_kind or AbortCause.RECORDING)
            else:
                self.abort(who, f"ended by the operator with {done} done", AbortCause.OPERATOR)

    def close(self) -> None:
        """Detach from the bus and the monitor (a window that starts another session leaves nothing behind)."""
        self.bus.unsubscribe(self)
        if self._on_trip in self.monitor.on_trip:
            self.monitor.on_trip.remove(self._on_trip)

    def _on_trip(self, trip: Trip) -> None:
        """Called on the thread that tripped: never wait here."""
        self._interrupt.set(f"the {trip.interlock} interlock tripped")
        self._paused_for(AbortCause.INTERLOCK)
        self._exposure.ended.set()
        if trip.interlock in SENSOR_DOUBT_INTERLOCKS and self.light is not None and trip.device == self.light:
            self.sensor_doubt[trip.device] = trip
            self.sensor_doubt_at[trip.device] = datetime.now(UTC).isoformat(timespec="seconds")
        if self.abort_on_trip:
            self._abort_for(trip)

    def _abort_for(self, trip: Trip) -> None:
        """A headless session ends on its first trip (the later callers find it ended: `abort` does nothing then)."""
        self._stop_all(f"interlock {trip.interlock}")
        self.abort("safety", f"interlock {trip.interlock} on {trip.device}: {trip.message}", AbortCause.INTERLOCK)

    def latched_cause(self) -> str:
        """The interlocks latched now, in words ("interlock estop on light; interlock estop on pen"); "" if none."""
        return "; ".join(f"interlock {t.interlock} on {t.device}" for t in self.monitor.tripped.values())

    def _paused_for(self, cause: AbortCause) -> None:
        """Note why the step is being interrupted: the first cause stands (a trip outranks what follows from it)."""
        if self.pause_cause == AbortCause.NONE or cause == AbortCause.INTERLOCK:
            self.pause_cause = cause

    def _pause_after_interrupt(self, why: str) -> None:
        with self._lock:
            if self._state == State.TREATING:
                trips = self.monitor.tripped
                cause = self.latched_cause() or why
                # not stopped by an interlock nor the operator: the device failed the step (it did not end, close
                # or settle in time, or a command failed)
                self._paused_for(AbortCause.INTERLOCK if trips else AbortCause.DEVICE)
                self._transition(State.PAUSED, cause, "safety" if trips else "session")

    def _stop_all(self, why: str) -> None:
        for name in roles.light_first(self.devices):
            try:
                self.devices[name].stop_now(why)
            except DeviceError as exc:  # the monitor's trip already records a stop that could not be written
                log.info("stop of %s not written: %s", name, exc)

    def _step_event(self, kind: str, step: Step, message: str, **details: object) -> None:
        self.bus.publish_event(Event(now_s(), "protocol", "info", "session", message,
                                     {"event": kind, "step_index": self.current, "area": step.area_label, **asdict(step),
                                      **details}))

    def step_outcomes(self) -> list[dict]:
        """One entry per step that ran, its runs merged (workstation/session/outcome.py)."""
        return merge_runs(self.steps, self.results)

    def outcome(self) -> str:
        """completed (every step done), partial (something delivered, not everything) or aborted (nothing)."""
        return session_outcome(self.steps, self.step_outcomes())

    def summary(self) -> dict:
        """state (the outcome word), session_state, abort_reason, steps planned and done, trips, results per step."""
        return summarize(self)
