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
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import numpy as np

from drivers.base import DeviceError, SerialDevice
from drivers.codes import InterlockCause
from workstation.bus import BaseSink, Event, SessionBus, now_s
from workstation.progname import command
from workstation.session.outcome import delivered_by_runs, merge_runs, session_outcome, summarize
from workstation.session.safety import SafetyMonitor, StepLimits, Trip

log = logging.getLogger(__name__)

CLOSE_CONFIRM_S = 0.25  # after the device reports the dose reached, telemetry must show the shutter closed by then
DEPTH_SETTLE_S = 1.0  # time allowed for the pen's depth stop to reach a new setting before needling starts
DEPTH_SETTLE_TOLERANCE_MM = 0.02
INACTIVE_CONFIRM_S = 0.5  # after a STOP, telemetry must show the device inactive (the pen brakes for ~50 ms)
NOTE_MAX_CHARS = 500
# Trips that put a device's own dose reading in doubt: a sensor reading low stops at the backup time, and a reading
# the driver rejected is no reading at all. "What is left" of the step would be measured by the same sensor, so
# no more light from that device in this session until a radiometer check is recorded (`sensor_checked`). The pen
# measures no dose: its implausible readings trip and reset as any other interlock.
SENSOR_DOUBT_INTERLOCKS = (InterlockCause.BACKUP_TIME, InterlockCause.SENSOR_IMPLAUSIBLE)
MIN_DEVICE_DOSE_MJ_CM2 = 1.0  # the light's smallest settable target (drivers/light.py bounds)


class State(StrEnum):
    IDLE = "idle"
    CONNECTED = "connected"
    PLAN_LOADED = "plan_loaded"
    ARMED = "armed"
    TREATING = "treating"
    PAUSED = "paused"
    COMPLETED = "completed"
    ABORTED = "aborted"


_ALLOWED = {
    State.IDLE: {State.CONNECTED, State.ABORTED},
    State.CONNECTED: {State.PLAN_LOADED, State.ABORTED},
    State.PLAN_LOADED: {State.ARMED, State.PLAN_LOADED, State.ABORTED},
    State.ARMED: {State.TREATING, State.PAUSED, State.COMPLETED, State.ABORTED},
    State.TREATING: {State.ARMED, State.PAUSED, State.COMPLETED, State.ABORTED},
    State.PAUSED: {State.ARMED, State.ABORTED, State.COMPLETED},
    State.COMPLETED: set(),
    State.ABORTED: set(),
}


class SessionError(Exception):
    """An operation the session cannot do in its current state; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Step:
    """One thing to do on one area: a light exposure or needling passes. Built from the dose engine's plan."""

    area_id: str
    area_label: str
    modality: str  # "light" or "needling"
    target_dose_mj_cm2: float = 0.0
    area_dose_cap_mj_cm2: float = math.inf
    depth_mm: float = 0.0
    depth_limit_mm: float = 0.0
    stroke_rate_hz: float = 0.0
    passes: int = 0
    pass_duration_s: float = 0.0  # headless/simulated needling: how long the pen runs per pass

    def describe(self) -> str:
        if self.modality == "light":
            return f"light on {self.area_label}: {self.target_dose_mj_cm2:g} mJ/cm²"
        return (f"needling on {self.area_label}: {self.depth_mm:g} mm, {self.stroke_rate_hz:g} Hz, "
                f"{self.passes} pass{'es' if self.passes != 1 else ''}")


@dataclass
class StepResult:
    """One run of a step. A step stopped and run again after a resume has several runs; together they deliver the
    step's target once (the later runs give only what is left)."""

    step: Step
    outcome: str  # "done", "interrupted", "skipped"
    delivered_dose_mj_cm2: float = 0.0
    passes_done: int = 0
    t_start_s: float = 0.0
    t_end_s: float = 0.0
    note: str = ""
    step_index: int = -1


@dataclass
class _Exposure:
    """What the session tracks of the active exposure, fed from the light's blocks (reader thread)."""

    started: bool = False
    ended: threading.Event = field(default_factory=threading.Event)  # the device said the exposure ended
    closed: threading.Event = field(default_factory=threading.Event)  # telemetry shows the shutter closed after that
    max_dose_mj_cm2: float = 0.0
    irradiance_mw_cm2: float = 0.0


class Session(BaseSink):
    def __init__(self, bus: SessionBus, devices: dict[str, SerialDevice], monitor: SafetyMonitor, *,
                 operator_id: str = "", abort_on_trip: bool = False) -> None:
        self.bus = bus
        self.devices = devices
        self.monitor = monitor
        self.operator_id = operator_id
        self.abort_on_trip = abort_on_trip
        self.steps: list[Step] = []
        self.results: list[StepResult] = []
        self.current = 0  # index of the next step to run
        self.area_dose_mj_cm2: dict[str, float] = {}
        self.abort_reason = ""
        self._state = State.IDLE
        self._lock = threading.RLock()
        self._interrupt = threading.Event()
        self._exposure = _Exposure()
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
            if new not in _ALLOWED[old]:
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
            if s.modality not in ("light", "needling"):
                raise SessionError(f"unknown modality {s.modality!r} in the plan.")
            if s.modality == "light" and "light" not in self.devices:
                raise SessionError("the plan has a light step but no light device is connected.")
            if s.modality == "needling" and "pen" not in self.devices:
                raise SessionError("the plan has a needling step but no pen is connected.")
        self.steps = list(steps)
        self.current = 0
        self._transition(State.PLAN_LOADED, f"plan of {len(steps)} steps loaded", who)

    def arm(self, who: str) -> None:
        if self.monitor.is_tripped():
            raise SessionError("an interlock is latched: check the cause, then reset the interlocks before arming.")
        self._interrupt.clear()
        self._transition(State.ARMED, "armed by the operator", who)

    @property
    def next_step(self) -> Step | None:
        return self.steps[self.current] if self.current < len(self.steps) else None

    # --- running steps (worker thread) -----------------------------------------------------------------------
    def run_all(self, who: str) -> State:
        """Run every remaining step in order; return the final state. For the headless runner."""
        if self._state == State.PLAN_LOADED:
            self.arm(who)
        while self._state == State.ARMED and self.next_step is not None:
            self.run_step(who)
        if self._state == State.ARMED and self.next_step is None:
            self._transition(State.COMPLETED, "all steps done", who)
        return self._state

    def run_step(self, who: str) -> StepResult:
        step = self.next_step
        if step is None:
            raise SessionError("there is no step left to run.")
        if self._state != State.ARMED:
            raise SessionError(f"arm the session before starting a step (it is {self._state}).")
        if self.monitor.is_tripped():
            raise SessionError("an interlock is latched: reset it before starting a step.")
        if step.modality == "light":
            self.refuse_if_sensor_in_doubt("light")
        self._interrupt.clear()
        self._transition(State.TREATING, f"step {self.current + 1}: {step.describe()}", who)
        self._step_event("step_started", step, f"step {self.current + 1} started: {step.describe()}")
        result = StepResult(step, "interrupted", t_start_s=now_s(), step_index=self.current)
        try:
            if step.modality == "light":
                self._run_light(step, result)
            else:
                self._run_needling(step, result)
        except DeviceError as exc:
            result.note = str(exc)
            self._stop_all(f"device error: {exc}")
        finally:
            if result.outcome != "done":
                t_stop = now_s()
                self._stop_all("step interrupted")
                # The step's limits stay until telemetry shows its device stopped (the pen brakes for ~50 ms); a
                # device that does not stop in time then meets the idle limits, and the monitor stops it again.
                device = "light" if step.modality == "light" else "pen"
                if device in self.devices and self.devices[device].connected:
                    self._wait_inactive(device, t_stop, INACTIVE_CONFIRM_S, interruptible=False)
            self.monitor.set_limits(StepLimits())
            result.t_end_s = now_s()
        self.results.append(result)
        if step.modality == "light":
            self.area_dose_mj_cm2[step.area_id] = (self.area_dose_mj_cm2.get(step.area_id, 0.0)
                                                    + result.delivered_dose_mj_cm2)
        self._step_event("step_ended", step, f"step {self.current + 1} {result.outcome}: {step.describe()}",
                         outcome=result.outcome, delivered_dose_mj_cm2=round(result.delivered_dose_mj_cm2, 3),
                         passes_done=result.passes_done, note=result.note)
        if result.outcome == "done":
            self.current += 1
            if self._state == State.TREATING:
                self._transition(State.ARMED, "step done", "session")
        elif self._state == State.TREATING:
            self._pause_after_interrupt(result.note or "step interrupted")
        return result

    def delivered_in_step(self, index: int) -> tuple[float, int]:
        """(dose mJ/cm², passes) the step at `index` delivered over all its runs so far (a started pass counts)."""
        return delivered_by_runs(self.results, index)

    def _limits_for(self, step: Step, target_mj_cm2: float = 0.0) -> StepLimits:
        return StepLimits(
            area_id=step.area_label,
            light_allowed=step.modality == "light",
            needling_allowed=step.modality == "needling",
            target_dose_mj_cm2=target_mj_cm2,
            area_dose_before_mj_cm2=self.area_dose_mj_cm2.get(step.area_id, 0.0),
            area_dose_cap_mj_cm2=step.area_dose_cap_mj_cm2,
            depth_limit_mm=step.depth_limit_mm,
        )

    def _run_light(self, step: Step, result: StepResult) -> None:
        light = self.devices["light"]
        # The device's own dose control is the primary stop: never give it more than the area has left under its
        # cap. The monitor's host-side checks are the backup (they can overshoot by one frame plus the shutter).
        left = step.area_dose_cap_mj_cm2 - self.area_dose_mj_cm2.get(step.area_id, 0.0)
        # A step run again after a stop gives only what its earlier runs did not (the device's dose restarts at 0).
        before, _ = self.delivered_in_step(self.current)
        still_due = step.target_dose_mj_cm2 - before
        if before > 0 and still_due < MIN_DEVICE_DOSE_MJ_CM2:
            result.outcome = "done"
            result.note = (f"{before:.1f} of {step.target_dose_mj_cm2:g} mJ/cm² were given before the stop; the "
                           f"{max(still_due, 0.0):.1f} left is below the device's {MIN_DEVICE_DOSE_MJ_CM2:g} mJ/cm²")
            return
        device_target = min(still_due, left)
        if device_target < MIN_DEVICE_DOSE_MJ_CM2:
            result.note = (f"the area has {max(left, 0.0):.1f} mJ/cm² left under its cap of "
                           f"{step.area_dose_cap_mj_cm2:g} mJ/cm²: no exposure")
            return
        if before > 0:
            self._step_event("target_remaining", step, f"resumed: {before:.1f} mJ/cm² were given before the stop, "
                             f"{device_target:.1f} mJ/cm² to go", device_target_mj_cm2=device_target,
                             delivered_before_mj_cm2=before)
        elif device_target < step.target_dose_mj_cm2:
            self._step_event("target_capped", step, f"target lowered to {device_target:.1f} mJ/cm² so the area "
                             f"stays within its cap of {step.area_dose_cap_mj_cm2:g} mJ/cm²",
                             device_target_mj_cm2=device_target)
        light.set("target_dose_mj_cm2", round(device_target, 3))
        self.monitor.set_limits(self._limits_for(step, device_target))
        self._exposure = exp = _Exposure()
        if self._interrupt.is_set():
            return
        light.arm(True)
        exp.started = True
        light.start()
        if self._interrupt.is_set():
            light.stop_now("session interrupted")
            return
        # Expected time at the lamp's present output, with generous slack for warm-up; a stuck exposure is stopped.
        irr = max(exp.irradiance_mw_cm2, 20.0)
        timeout_s = 3.0 * device_target / irr + 10.0
        t_end = now_s() + timeout_s
        while not exp.ended.is_set() and not self._interrupt.is_set() and now_s() < t_end:
            exp.ended.wait(0.02)
        # The STATUS can precede the telemetry frame holding the exposure's last samples: the step (and the light's
        # limits) end only once a block shows the shutter closed, so the delivered dose is complete.
        exp.closed.wait(CLOSE_CONFIRM_S)
        result.delivered_dose_mj_cm2 = exp.max_dose_mj_cm2
        if exp.ended.is_set() and exp.closed.is_set() and not self._interrupt.is_set():
            result.outcome = "done"
            return
        if exp.ended.is_set() and not exp.closed.is_set() and not self._interrupt.is_set():
            result.note = f"the shutter was not seen closed within {CLOSE_CONFIRM_S * 1000:.0f} ms of the dose"
            self._stop_all(result.note)
            return
        if not self._interrupt.is_set():
            result.note = f"the exposure did not end within {timeout_s:.0f} s"
            self._stop_all(result.note)

    def _run_needling(self, step: Step, result: StepResult) -> None:
        pen = self.devices["pen"]
        _, passes_before = self.delivered_in_step(self.current)
        if passes_before >= step.passes:
            result.outcome = "done"
            result.note = f"all {step.passes} passes were started before the stop"
            return
        t_set = now_s()
        pen.set("depth_mm", step.depth_mm)
        pen.set("stroke_rate_hz", step.stroke_rate_hz)
        self.monitor.set_limits(self._limits_for(step))
        # The depth stop moves in ~100 ms: starting before it reaches a shallower setting would needle too deep.
        if not self._wait_depth(step.depth_mm, t_set, DEPTH_SETTLE_S):
            result.note = f"the needle depth did not reach {step.depth_mm:g} mm within {DEPTH_SETTLE_S:g} s"
            return
        # Passes already started in earlier runs count against the protocol's maximum (a partial pass counts as one).
        for k in range(passes_before, step.passes):
            if self._interrupt.is_set():
                return
            pen.arm(True)
            pen.start()
            result.passes_done += 1  # the needles may have touched the skin: this pass counts from now on
            if self._interrupt.is_set():  # stopped while the start was on its way: undo it
                pen.stop_now("session interrupted")
                return
            self._step_event("pass_started", step, f"pass {k + 1} of {step.passes} on {step.area_label}")
            if self._interrupt.wait(step.pass_duration_s):
                return
            t_stop = now_s()
            pen.stop()
            if not self._wait_inactive("pen", t_stop, INACTIVE_CONFIRM_S):
                result.note = f"the pen was not seen stopped within {INACTIVE_CONFIRM_S * 1000:.0f} ms of STOP"
                return
        result.outcome = "done"

    # --- interruptions (any thread) --------------------------------------------------------------------------
    def pause(self, who: str, why: str = "paused by the operator") -> None:
        """Stop both devices and pause; the step in progress ends as interrupted."""
        self._interrupt.set()
        self._stop_all(why)
        with self._lock:
            if self._state in (State.TREATING, State.ARMED):
                self._transition(State.PAUSED, why, who)

    def resume(self, who: str) -> None:
        if self._state != State.PAUSED:
            raise SessionError(f"only a paused session can resume (it is {self._state}).")
        if self.monitor.is_tripped():
            raise SessionError("an interlock is latched: check the cause, then reset the interlocks to resume.")
        step = self.next_step
        if step is not None and step.modality == "light":
            self.refuse_if_sensor_in_doubt("light")
        self._interrupt.clear()
        self._transition(State.ARMED, "resumed", who)

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

    def refuse_if_sensor_in_doubt(self, device: str) -> None:
        """Raises SessionError, in words, while `device`'s dose sensor is in doubt (SENSOR_DOUBT_INTERLOCKS)."""
        trip = self.sensor_doubt.get(device)
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
        """End the session now: devices stopped, session aborted."""
        self._interrupt.set()
        self._stop_all(why)
        self.abort(who, why)

    def estop(self, source: str) -> None:
        """Emergency stop from any thread: the monitor stops both devices at once; the session then pauses."""
        self._interrupt.set()
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

    def abort(self, who: str, why: str) -> None:
        with self._lock:
            if self._state in (State.COMPLETED, State.ABORTED):
                return
            self.abort_reason = why
            self._transition(State.ABORTED, why, who)

    def finish(self, who: str) -> None:
        """End the session: completed when every step is done, otherwise aborted, saying how many steps were done
        (the summary's outcome then says partial when something was delivered)."""
        self._stop_all("session finished")
        with self._lock:
            if self._state not in (State.ARMED, State.PAUSED, State.PLAN_LOADED):
                return
            if self.next_step is None and self.steps:
                self._transition(State.COMPLETED, "all steps done", who)
            else:
                done = sum(o["outcome"] == "done" for o in self.step_outcomes())
                self.abort(who, f"ended by the operator with {done} of {len(self.steps)} steps done")

    def close(self) -> None:
        """Detach from the bus and the monitor (a window that starts another session leaves nothing behind)."""
        self.bus.unsubscribe(self)
        if self._on_trip in self.monitor.on_trip:
            self.monitor.on_trip.remove(self._on_trip)

    def _on_trip(self, trip: Trip) -> None:
        """Called on the thread that tripped: never wait here."""
        self._interrupt.set()
        self._exposure.ended.set()
        if trip.interlock in SENSOR_DOUBT_INTERLOCKS and trip.device == "light" and "light" in self.devices:
            self.sensor_doubt[trip.device] = trip
            self.sensor_doubt_at[trip.device] = datetime.now(UTC).isoformat(timespec="seconds")
        if self.abort_on_trip:
            self._stop_all(f"interlock {trip.interlock}")
            self.abort("safety", f"interlock {trip.interlock} on {trip.device}: {trip.message}")

    def _pause_after_interrupt(self, why: str) -> None:
        with self._lock:
            if self._state == State.TREATING:
                trips = self.monitor.tripped
                cause = "; ".join(f"interlock {t.interlock} on {t.device}" for t in trips.values()) or why
                self._transition(State.PAUSED, cause, "safety" if trips else "session")

    def _stop_all(self, why: str) -> None:
        for name in sorted(self.devices, key=lambda n: n != "light"):
            try:
                self.devices[name].stop_now(why)
            except DeviceError as exc:  # the monitor's trip already records a stop that could not be written
                log.info("stop of %s not written: %s", name, exc)

    # --- bus sink: follow the exposure --------------------------------------------------------------------------
    def _wait_telemetry(self, seen: Callable[[], bool], timeout_s: float, *, interruptible: bool = True) -> bool:
        """Poll what the devices' telemetry shows until `seen()` or the timeout (or an interruption)."""
        t_end = now_s() + timeout_s
        while now_s() < t_end:
            if seen():
                return True
            if interruptible and self._interrupt.is_set():
                return False
            time.sleep(0.005)
        return False

    def _wait_depth(self, depth_mm: float, since_s: float, timeout_s: float) -> bool:
        """Wait until a pen block that arrived after `since_s` shows the measured depth at the setting."""
        def settled() -> bool:
            t, depth = self._last_depth
            return t >= since_s and abs(depth - depth_mm) <= DEPTH_SETTLE_TOLERANCE_MM
        return self._wait_telemetry(settled, timeout_s)

    def _wait_inactive(self, device: str, since_s: float, timeout_s: float, *, interruptible: bool = True) -> bool:
        """Wait until a block that arrived after `since_s` shows the device inactive."""
        def stopped() -> bool:
            t, active = self._last_seen.get(device, (0.0, True))
            return t >= since_s and not active
        return self._wait_telemetry(stopped, timeout_s, interruptible=interruptible)

    def on_block(self, device: str, block: np.ndarray) -> None:
        if not len(block):
            return
        flag = "shutter_open" if device == "light" else "running"
        if flag in block.dtype.names:
            self._last_seen[device] = (float(block["t_host_s"][-1]), bool(block[flag][-1]))
        if device == "pen":
            self._last_depth = (float(block["t_host_s"][-1]), float(block["depth_mm"][-1]))
        exp = self._exposure
        if device != "light" or not exp.started:
            return
        open_ = block["shutter_open"].astype(bool)
        if open_.any():
            exp.max_dose_mj_cm2 = max(exp.max_dose_mj_cm2, float(block["dose_mj_cm2"][open_].max()))
            exp.irradiance_mw_cm2 = float(block["irradiance_mw_cm2"][open_].mean())
        if exp.ended.is_set() and not open_[-1]:
            exp.max_dose_mj_cm2 = max(exp.max_dose_mj_cm2, float(block["dose_mj_cm2"].max()))
            exp.closed.set()

    def on_event(self, event: Event) -> None:
        if (event.source == "light" and event.kind == "device_state" and self._exposure.started
                and event.details.get("reason") == "DOSE_REACHED"):
            self._exposure.ended.set()

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
