"""How the session drives one step on its device and follows it in telemetry: a light exposure (target, arm, start,
wait for the device's dose-reached and a block showing the shutter closed) and needling passes (depth and rate,
wait for the depth stop, start and stop each pass, wait for a block showing the motor stopped).

A mixin of `workstation/session/session.py`'s Session, which owns the state (devices, monitor, interrupt, step
results); the methods here wait and are meant for the session's worker thread, except the bus-sink methods
(`on_block`, `on_event`), which run on the devices' reader threads and never wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drivers.errors import StartInhibited
from drivers.silence import wait_seen
from workstation.bus import Event, now_s
from workstation.session import roles
from workstation.session.steps import Step, StepResult

CLOSE_CONFIRM_S = 0.25  # after the device reports the dose reached, telemetry must show the shutter closed by then
DEPTH_SETTLE_S = 1.0  # time allowed for the pen's depth stop to reach a new setting before needling starts
DEPTH_SETTLE_TOLERANCE_MM = 0.02
INACTIVE_CONFIRM_S = 0.5  # after a STOP, telemetry must show the device inactive (the pen brakes for ~50 ms)
# How long a caller that must follow a step's end (a scenario's resume, ending the visit) waits for an interrupted
# step's run to finish: its STOP, the device confirmed inactive (INACTIVE_CONFIRM_S) and a command's answer at most.
STEP_END_WAIT_S = 10.0
MIN_DEVICE_DOSE_MJ_CM2 = 1.0  # the light's smallest settable target (drivers/light.py bounds)


@dataclass
class Exposure:
    """What the session tracks of the active exposure, fed from the light's blocks (reader thread)."""

    started: bool = False
    ended: threading.Event = field(default_factory=threading.Event)  # the device said the exposure ended
    closed: threading.Event = field(default_factory=threading.Event)  # telemetry shows the shutter closed after that
    max_dose_mj_cm2: float = 0.0
    irradiance_mw_cm2: float = 0.0


SESSION_OWNER = "session"  # the session's start inhibit (drivers.interfaces.Device.inhibit_starts)


class Interrupt:
    """The session's stop signal for its step, and the start gate it shuts on the session's devices as it is set.

    `set(why)` shuts the gate before anything else, so a STOP written after it (a pause, a stop, an E-stop, a trip)
    is never followed on the wire by a START or ARM the step's thread had already decided on: that command goes out
    before the STOP or not at all (drivers.errors.StartInhibited). `clear()` (a step starts, a session arms) opens
    it. The waits and looks are those of threading.Event."""

    def __init__(self, devices: dict[str, Any]) -> None:
        self._devices, self._event = devices, threading.Event()

    def set(self, why: str) -> None:
        for device in list(self._devices.values()):
            device.inhibit_starts(SESSION_OWNER, why)
        self._event.set()

    def clear(self) -> None:
        self._event.clear()
        for device in list(self._devices.values()):
            device.allow_starts(SESSION_OWNER)

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float) -> bool:
        return self._event.wait(timeout_s)


class StepRuns:
    """The step-driving half of Session (see the module's docstring). What it reads of the session:"""

    devices: dict[str, Any]  # by name; `light` and `pen` are the names of the devices of those kinds
    light: str | None
    pen: str | None
    monitor: Any  # workstation.session.safety.SafetyMonitor
    current: int
    area_dose_mj_cm2: dict[str, float]
    _channels: dict[str, str | None]
    _interrupt: Interrupt
    _exposure: Exposure
    _last_seen: dict[str, tuple[float, bool]]
    _last_depth: tuple[float, float]
    delivered_in_step: Callable[[int], tuple[float, int]]
    _limits_for: Callable[..., Any]
    _step_event: Callable[..., None]
    _stop_all: Callable[[str], None]

    def _run_light(self, step: Step, result: StepResult) -> None:
        light = self.devices[self.light]
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
        light.set_target_dose(round(device_target, 3))
        self.monitor.set_limits(self._limits_for(step, device_target))
        self._exposure = exp = Exposure()
        if self._interrupt.is_set():
            return
        try:
            light.arm(True)
            exp.started = True
            light.start()
        except StartInhibited:  # interrupted as it was about to start: neither went out after the stop (Interrupt)
            exp.started = False
            return
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
        pen = self.devices[self.pen]
        _, passes_before = self.delivered_in_step(self.current)
        if passes_before >= step.passes:
            result.outcome = "done"
            started = "its one pass was" if step.passes == 1 else f"all {step.passes} passes were"
            result.note = f"{started} started before the stop"
            return
        t_set = now_s()
        pen.set_depth(step.depth_mm)
        pen.set_stroke_rate(step.stroke_rate_hz)
        self.monitor.set_limits(self._limits_for(step))
        # The depth stop moves in ~100 ms: starting before it reaches a shallower setting would needle too deep.
        if not self._wait_depth(step.depth_mm, t_set, DEPTH_SETTLE_S):
            if not self._interrupt.is_set():  # a wait cut short by the session's stop says nothing of the pen
                result.note = f"the needle depth did not reach {step.depth_mm:g} mm within {DEPTH_SETTLE_S:g} s"
            return
        # Passes already started in earlier runs count against the protocol's maximum (a partial pass counts as one).
        for k in range(passes_before, step.passes):
            if self._interrupt.is_set():
                return
            try:
                pen.arm(True)
                pen.start()
            except StartInhibited:  # interrupted as it was about to start: this pass never began (Interrupt)
                return
            result.passes_done += 1  # the needles may have touched the skin: this pass counts from now on
            if self._interrupt.is_set():  # stopped while the start was on its way: undo it
                pen.stop_now("session interrupted")
                return
            self._step_event("pass_started", step, f"pass {k + 1} of {step.passes} on {step.area_label}")
            if self._interrupt.wait(step.pass_duration_s):
                return
            t_stop = now_s()
            pen.stop()
            if not self._wait_inactive(self.pen, t_stop, INACTIVE_CONFIRM_S):
                # cut short by an E-stop or a trip: the session's stop, not the pen, ended the wait (a third fresh
                # tester of issue 12: an E-stop right at a pass's end said "not seen stopped" of a pen that stopped)
                if not self._interrupt.is_set():
                    result.note = f"the pen was not seen stopped within {INACTIVE_CONFIRM_S * 1000:.0f} ms of STOP"
                return
        result.outcome = "done"

    # --- bus sink: follow the exposure --------------------------------------------------------------------------
    def _wait_telemetry(self, seen: Callable[[], bool], timeout_s: float, *, interruptible: bool = True) -> bool:
        """Poll what the devices' telemetry shows until `seen()` or the timeout (or an interruption). The timeout
        counts only the time this thread was looking (drivers.silence.wait_seen): a step held up 0.5 s right after
        its STOP was ended as "not seen stopped" before the reader had caught up (fresh tester of issue 12)."""
        stop = (lambda: self._interrupt.is_set()) if interruptible else None
        return wait_seen(seen, timeout_s, stop=stop, clock=now_s)

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
        active = roles.active_flags(block, self._channels.get(device))
        if active is not None:
            self._last_seen[device] = (float(block["t_host_s"][-1]), bool(active[-1]))
        if device == self.pen:
            self._last_depth = (float(block["t_host_s"][-1]), float(block["depth_mm"][-1]))
        exp = self._exposure
        if device != self.light or not exp.started or active is None:
            return
        open_ = active
        if open_.any():
            exp.max_dose_mj_cm2 = max(exp.max_dose_mj_cm2, float(block["dose_mj_cm2"][open_].max()))
            exp.irradiance_mw_cm2 = float(block["irradiance_mw_cm2"][open_].mean())
        if exp.ended.is_set() and not open_[-1]:
            exp.max_dose_mj_cm2 = max(exp.max_dose_mj_cm2, float(block["dose_mj_cm2"].max()))
            exp.closed.set()

    def on_event(self, event: Event) -> None:
        if (event.source == self.light and event.kind == "device_state" and self._exposure.started
                and event.details.get("reason") == "DOSE_REACHED"):
            self._exposure.ended.set()
