"""The safety monitor: interlocks evaluated on every block, off the GUI thread, that command the devices to stop.

It is a bus sink subscribed *first*, so it runs on each device's reader thread as soon as a block is decoded, before
the recorder or the plots see it. Time-based interlocks (telemetry lost) run on the monitor's own watchdog thread,
which is also the host's proof of life: the drivers send heartbeats only while `alive()` is true, so a hung host
lets the devices' own 250 ms watchdogs stop them. Nothing here waits for the GUI.

A trip is latched (`tripped`) until the operator resets it; emission then needs a new arm and start: never an
automatic restart (21 CFR 1040.10). Every trip is an `interlock` event with its cause, the values, and its latency
from the arrival of the block that showed the cause to the stop command written.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

import numpy as np

from drivers.base import TELEMETRY_LOST_S
from drivers.codes import InterlockCause, LinkEvent
from workstation.bus import BaseSink, CommandRecord, Event, SessionBus, now_s
from workstation.errors import UserError
from workstation.session import roles

log = logging.getLogger(__name__)

RESEND_STOP_AFTER_S = 0.1  # a device still active this long after a trip gets another stop and an alarm
WATCHDOG_PERIOD_S = 0.01
HOST_MAX_LAMP_TEMP_C = 42.0  # below the device's own 45 °C cut-out: the host acts first
# An over-temperature is reset only once the lamp is this far below the host limit (39 °C), so a lamp hovering at
# the limit cannot be reset, re-armed and tripped again at once; the device's own RESET uses 3 °C under its 45 °C.
RESET_TEMP_HYSTERESIS_C = 3.0
RESET_ANSWER_S = 0.5  # a device whose last telemetry is older than this is not answering: no reset
RESET_SETTLE_S = 0.05  # the causes are judged on a block that arrived this long after the reset was asked for


# A fault the device reports (it has already stopped itself) is tripped under the interlock it corresponds to.
FAULT_INTERLOCKS = {
    "CONTACT_LOST": InterlockCause.CONTACT_LOST,
    "OVER_TEMPERATURE": InterlockCause.OVER_TEMPERATURE,
    "WATCHDOG": InterlockCause.HEARTBEAT_LOST,
    "BACKUP_TIME": InterlockCause.BACKUP_TIME,
}
# The host's backup-time check allows for the flags' margin over the light: the active flag is set from START (the
# shutter opening, 5 ms) to fully closed (5 ms), and the device decides on whole 0.5 ms samples.
BACKUP_TIME_TOLERANCE_S = 0.02


@dataclass(frozen=True, slots=True)
class StepLimits:
    """What the current step allows; the session swaps it atomically when a step starts or ends."""

    area_id: str = ""
    light_allowed: bool = False  # False: any open shutter is a protocol-rule trip (e.g. a PIH area, a needling step)
    needling_allowed: bool = False
    target_dose_mj_cm2: float = 0.0  # host-side stop for the current exposure (the device closes at its own target)
    area_dose_before_mj_cm2: float = 0.0  # dose this area already received in this session
    area_dose_cap_mj_cm2: float = float("inf")  # per-session cap for the area
    depth_limit_mm: float = 0.0
    dose_tolerance_mj_cm2: float = 1.0  # about one 10 ms frame at 100 mW/cm²; the device itself closes within 0.025
    depth_tolerance_mm: float = 0.05
    max_lamp_temp_c: float = HOST_MAX_LAMP_TEMP_C

    def describe(self) -> str:
        if not (self.light_allowed or self.needling_allowed):
            return "limits: no light, no needling"
        if self.light_allowed:
            return (f"limits: light on {self.area_id}, target {self.target_dose_mj_cm2:g} mJ/cm², area cap "
                    f"{self.area_dose_cap_mj_cm2:g} mJ/cm² ({self.area_dose_before_mj_cm2:g} given before)")
        return f"limits: needling on {self.area_id}, depth at most {self.depth_limit_mm:g} mm"

    def to_details(self) -> dict[str, object]:
        """The fields as event details (JSON: an infinite cap is written as null)."""
        return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_details(cls, details: dict[str, object]) -> StepLimits:
        known = {f.name: f for f in fields(cls)}
        values = {k: (float("inf") if v is None and known[k].type == "float" else v)
                  for k, v in details.items() if k in known}
        return cls(**values)


LIMITS_EVENT = "limits"  # the event kind set_limits records


@dataclass
class Trip:
    interlock: str
    device: str
    message: str
    t_cause_s: float
    t_stop_written_s: float
    details: dict = field(default_factory=dict)

    @property
    def latency_ms(self) -> float:
        return (self.t_stop_written_s - self.t_cause_s) * 1000.0


Found = tuple[InterlockCause, str, dict[str, object]] | None  # a kind check's verdict: cause, message, details


def _contact(b: np.ndarray, on: np.ndarray, lim: StepLimits) -> Found:
    """Skin contact lost while emitting: the handpiece is off the treated area."""
    if not b["skin_contact"][on].all():
        return InterlockCause.CONTACT_LOST, "skin contact lost while emitting", {}
    return None


def _lamp_temperature(b: np.ndarray, on: np.ndarray, lim: StepLimits) -> Found:
    """The lamp above the host's limit (HOST_MAX_LAMP_TEMP_C, 42 °C: below the device's own 45 °C cut-out)."""
    temp = float(b["lamp_temp_c"][on].max())
    if temp > lim.max_lamp_temp_c:
        return (InterlockCause.OVER_TEMPERATURE, f"lamp at {temp:.1f} °C, above {lim.max_lamp_temp_c:g} °C",
                {"lamp_temp_c": temp, "limit_c": lim.max_lamp_temp_c})
    return None


def _target_dose(b: np.ndarray, on: np.ndarray, lim: StepLimits) -> Found:
    """The dose past the step's target by more than the tolerance (one 10 ms frame at 100 mW/cm²): the device's own
    dose control failed to close (the target comes from the dose engine, CLINICAL.md)."""
    dose = float(b["dose_mj_cm2"][on].max())
    if dose >= lim.target_dose_mj_cm2 + lim.dose_tolerance_mj_cm2:
        return (InterlockCause.TARGET_DOSE, f"dose {dose:.1f} mJ/cm² passed the planned {lim.target_dose_mj_cm2:g} "
                "mJ/cm² and the shutter is still open", {"dose_mj_cm2": dose, "target_mj_cm2": lim.target_dose_mj_cm2})
    return None


def _area_dose_cap(b: np.ndarray, on: np.ndarray, lim: StepLimits) -> Found:
    """The area's dose this session past its cap (the protocol's per-session cap, CLINICAL.md via the dose engine)."""
    total = lim.area_dose_before_mj_cm2 + float(b["dose_mj_cm2"][on].max())
    if total >= lim.area_dose_cap_mj_cm2 + lim.dose_tolerance_mj_cm2:
        return (InterlockCause.AREA_DOSE_CAP, f"area {lim.area_id} would exceed its cap of "
                f"{lim.area_dose_cap_mj_cm2:g} mJ/cm² this session",
                {"area_dose_mj_cm2": total, "cap_mj_cm2": lim.area_dose_cap_mj_cm2})
    return None


def _depth(b: np.ndarray, on: np.ndarray, lim: StepLimits) -> Found:
    """The needle deeper than the area's limit (set point or measured; CLINICAL.md: never above 2.5 mm, less by
    region, from the dose engine), beyond a 0.05 mm tolerance."""
    depth = float(max(b["depth_mm"][on].max(), b["depth_set_mm"][on].max()))
    if depth > lim.depth_limit_mm + lim.depth_tolerance_mm:
        return (InterlockCause.DEPTH_LIMIT, f"needle depth {depth:.2f} mm is over the area's limit of "
                f"{lim.depth_limit_mm:g} mm", {"depth_mm": depth, "limit_mm": lim.depth_limit_mm})
    return None


@dataclass(frozen=True, slots=True)
class KindRules:
    """What the monitor checks on a device of one kind while it is active, declared once per kind."""

    allowed: str  # the StepLimits field that allows this kind's activity in the current step ("": none does)
    refused: str  # what happened, when the step allows none
    doing: str  # "emitting" / "needling", for a fault's message
    checks: tuple[Callable[[np.ndarray, np.ndarray, StepLimits], Found], ...]  # the kind's own, in order
    light: bool = False  # also the backup time and the idle lamp temperature


KIND_RULES = {
    roles.LIGHT: KindRules("light_allowed", "light emitted during a step that allows no UV", "emitting",
                           (_contact, _lamp_temperature, _target_dose, _area_dose_cap), light=True),
    roles.NEEDLING: KindRules("needling_allowed", "needling during a step that allows none", "needling", (_depth,)),
}
UNKNOWN_KIND = KindRules("", "active, but no step allows a device of its kind", "active", ())  # fails safe


def link_loss(event: Event) -> InterlockCause | None:
    """The interlock a `connection` event calls for, from its codes (drivers/codes.py): DISCONNECTED for a link lost
    (`details["link"]` DISCONNECTED, or a `details["disconnect"]` reason), TELEMETRY_LOST for telemetry lost; None
    for the others. A high-severity connection event without a code (a driver that gives none) is a link in doubt:
    TELEMETRY_LOST, so it trips all the same."""
    link = event.details.get("link")
    if link == LinkEvent.DISCONNECTED or event.details.get("disconnect"):
        return InterlockCause.DISCONNECTED
    if link == LinkEvent.TELEMETRY_LOST or (link is None and event.severity == "high"):
        return InterlockCause.TELEMETRY_LOST
    return None


class ResetRefused(UserError):
    """The operator's reset was refused: a cause is still present. The message names it and what to do."""


class Stoppable(Protocol):
    """What the monitor needs of a device: its declarations (`INFO.kind`, `active_channel`: which rules apply, which
    channel means active) and a stop written at once, returning when it was written (raises if it cannot)."""

    name: str
    INFO: Any  # drivers.types.DriverInfo (the monitor reads its `kind`)
    active_channel: str | None

    def stop_now(self, why: str) -> float: ...


class SafetyMonitor(BaseSink):
    def __init__(self, bus: SessionBus, devices: dict[str, Stoppable] | None = None,
                 clock: Callable[[], float] = now_s) -> None:
        """`clock`: the host monotonic clock; the audit (`workstation/session/audit.py`) gives a recording's time instead."""
        self.bus = bus
        self.clock = clock
        self.devices: dict[str, Stoppable] = {}
        self._declared: dict[str, tuple[str, str | None]] = {}  # device -> (kind, active channel), as its driver declares
        self.limits = StepLimits()
        self.trips: list[Trip] = []
        self.on_trip: list[Callable[[Trip], None]] = []  # the session's hooks; called on the tripping thread
        self._lock = threading.RLock()
        self._tripped: dict[str, Trip] = {}  # device -> the latched trip
        self._active: dict[str, bool] = {}  # device -> emitting / needling, per the last block
        self._last_block_s: dict[str, float] = {}
        self._backup_s: dict[str, float] = {}  # device -> backup time it acknowledged (s)
        self._exposure_from_us: dict[str, int | None] = {}  # device -> device time its current exposure began
        self._hot: set[str] = set()  # devices whose lamp-over-temperature alarm is raised
        self._last_row: dict[str, dict[str, float]] = {}  # device -> lamp_temp_c, skin_contact, fault_bits, last row
        self._alive_s = clock()
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self.watchdog_period_s = WATCHDOG_PERIOD_S
        for name, dev in (devices or {}).items():
            self.add_device(name, dev)

    # --- life cycle ------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._running.set()
        self._thread = threading.Thread(target=self._watchdog_loop, name="safety-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running.clear()
        if self._thread:
            self._thread.join(timeout=1)

    def alive(self) -> bool:
        """True while the watchdog thread runs on time: the drivers' heartbeats depend on it."""
        return self._running.is_set() and self.clock() - self._alive_s < 0.2

    def add_device(self, name: str, device: Stoppable) -> None:
        """Watch `device` under `name`: the rules of its kind apply to its blocks, read on its active channel."""
        with self._lock:
            self._declared[name] = (roles.kind_of(device), roles.active_channel(device))
            self.devices[name] = device

    def set_limits(self, limits: StepLimits) -> None:
        self.limits = limits  # a reference swap: readers see the old or the new, never a mix
        # Recorded, so that an audit can hold a recording against the rules that applied at each moment.
        self.bus.publish_event(Event(self.clock(), LIMITS_EVENT, "info", "safety", limits.describe(),
                                     limits.to_details()))

    # --- state -----------------------------------------------------------------------------------------------
    @property
    def tripped(self) -> dict[str, Trip]:
        with self._lock:
            return dict(self._tripped)

    def is_tripped(self, device: str | None = None) -> bool:
        with self._lock:
            return bool(self._tripped) if device is None else device in self._tripped

    def reset(self, who: str) -> list[Trip]:
        """The operator's manual reset: clears latched trips so a new arm and start are possible."""
        with self._lock:
            cleared, self._tripped = list(self._tripped.values()), {}
        if cleared:
            self.bus.publish_event(Event(
                self.clock(), "interlock_reset", "info", "operator",
                f"interlocks reset by {who}: " + ", ".join(t.interlock for t in cleared),
                {"who": who, "cleared": [t.interlock for t in cleared]},
            ))
        return cleared

    def needs_reset(self) -> bool:
        """An interlock is latched, or a device's last telemetry shows a latched fault: a reset can act."""
        with self._lock:
            if self._tripped:
                return True
        return any(row.get("fault_bits", 0) for row in list(self._last_row.values()))

    def reset_checked(self, who: str) -> list[Trip]:
        """The operator's reset, refused while a cause remains; resets the devices' latched faults too
        (workstation/session/reset.py). Waits for the devices: call it off the GUI thread."""
        from workstation.session.reset import reset_checked

        return reset_checked(self, who)

    def last_row(self, device: str) -> dict[str, float]:
        """lamp_temp_c, skin_contact and fault_bits of the device's last sample (empty before its first block)."""
        return dict(self._last_row.get(device, {}))

    def last_block_s(self, device: str) -> float:
        """Host time of the device's last block (0 before the first)."""
        return self._last_block_s.get(device, 0.0)

    def is_active(self, device: str) -> bool:
        """Emitting or needling per the device's last block (False once its telemetry was lost)."""
        return bool(self._active.get(device))

    # --- the interlocks --------------------------------------------------------------------------------------
    def estop(self, source: str) -> list[Trip]:
        """Emergency stop, from any thread: every device is stopped at once, the light sources first."""
        t = self.clock()
        names = roles.light_first(self.devices)
        return [
            trip for n in names
            if (trip := self._trip(InterlockCause.ESTOP, n, f"E-stop pressed ({source})", t, force=True, source=source))
        ]

    def on_block(self, device: str, block: np.ndarray) -> None:
        if not len(block):  # drivers publish no empty blocks; a sample-less block proves nothing, not even life
            return
        t = float(block["t_host_s"][-1])
        self._last_block_s[device] = t
        self._last_row[device] = {k: float(block[k][-1]) for k in ("lamp_temp_c", "skin_contact", "fault_bits")
                                  if k in block.dtype.names}
        kind, channel = self._declared.get(device, ("", None))
        try:
            active, rules, lim = roles.active_flags(block, channel), KIND_RULES.get(kind, UNKNOWN_KIND), self.limits
            if active is not None:
                self._active[device] = bool(active[-1])
                if active.any():
                    self._check_active(device, rules, block, active, lim, t)
                if rules.light:
                    self._check_backup_time(device, block, active, t)
                    if "lamp_temp_c" in block.dtype.names:
                        self._watch_idle_heat(device, float(block["lamp_temp_c"].max()), lim, t)
        except Exception as exc:  # noqa: BLE001 - a check that cannot run is a trip, never a skipped check
            trip = self._trip(InterlockCause.DEVICE_FAULT, device, f"the safety monitor could not check {device}'s "
                              f"telemetry ({type(exc).__name__}: {exc}); stopped, since its interlocks cannot be "
                              "judged", t, force=True)
            if trip is not None:  # once per trip, not once per block
                log.error("safety: the checks of %s could not run on its telemetry", device, exc_info=exc)
        self._check_still_active(device, t)

    def _watch_idle_heat(self, device: str, temp: float, lim: StepLimits, t: float) -> None:
        """A lamp over the limit is an alarm even with the shutter closed (an exposure would trip at once); raised
        once, re-armed when the lamp is back below the reset temperature. Emitting, the interlock trips instead."""
        if temp > lim.max_lamp_temp_c and device not in self._hot:
            self._hot.add(device)
            self.bus.publish_event(Event(t, "alarm", "high", "safety", f"The {device}'s lamp is at {temp:.1f} °C, "
                                         f"above {lim.max_lamp_temp_c:g} °C: no exposure until it has cooled below "
                                         f"{lim.max_lamp_temp_c - RESET_TEMP_HYSTERESIS_C:g} °C.",
                                         {"device": device, "lamp_temp_c": temp, "limit_c": lim.max_lamp_temp_c}))
        elif temp < lim.max_lamp_temp_c - RESET_TEMP_HYSTERESIS_C:
            self._hot.discard(device)

    def _check_active(self, device: str, rules: KindRules, b: np.ndarray, on: np.ndarray, lim: StepLimits,
                      t: float) -> None:
        """One check for every kind, over the samples where the device was active: the step must allow the kind
        (protocol rule), the device must report no fault, then the kind's own checks in order; the first that
        fails trips."""
        if not (rules.allowed and getattr(lim, rules.allowed)):
            self._trip(InterlockCause.PROTOCOL_RULE, device, f"{rules.refused} (area {lim.area_id or 'none'})", t,
                       area=lim.area_id)
            return
        if "fault_bits" in b.dtype.names and (b["fault_bits"][on] != 0).any():
            self._trip(InterlockCause.DEVICE_FAULT, device, f"the {device} reports a fault while {rules.doing}", t,
                       fault_bits=int(b["fault_bits"][on].max()))
            return
        for check in rules.checks:
            found = check(b, on, lim)
            if found is not None:
                cause, message, details = found
                self._trip(cause, device, message, t, **details)
                return

    def _check_backup_time(self, device: str, b: np.ndarray, on: np.ndarray, t: float) -> None:
        """`backup_time`: an exposure still open past the backup time its device was sent, on the device clock."""
        backup_s = self._backup_s.get(device)
        t_us = b["t_device_us"]
        start = self._exposure_from_us.get(device) if on[0] else None
        if on[0] and start is None:
            start = int(t_us[0])
        for i in np.flatnonzero(on[1:] != on[:-1]) + 1:  # exposures beginning or ending inside the block
            start = int(t_us[i]) if on[i] else None
        self._exposure_from_us[device] = start if on[-1] else None
        if backup_s is None or start is None or not on.any():
            return
        open_s = (int(t_us[on][-1]) - start) / 1e6
        if open_s > backup_s + BACKUP_TIME_TOLERANCE_S:
            self._trip(InterlockCause.BACKUP_TIME, device, f"the exposure has been open {open_s:.3f} s, past its backup "
                       f"time of {backup_s:g} s", t, open_s=round(open_s, 4), backup_time_s=backup_s)

    def on_command(self, record: CommandRecord) -> None:
        """Keeps each device's backup time as the device acknowledged it (sent with every target dose)."""
        if record.command == "set" and record.result == "ack" and record.args.get("param") == "backup_time_s":
            self._backup_s[record.device] = float(record.args["value"])

    def on_event(self, event: Event) -> None:
        if event.source not in self.devices:
            return
        if event.kind == "implausible":
            if event.details.get("active") or self._active.get(event.source):
                self._trip(InterlockCause.SENSOR_IMPLAUSIBLE, event.source, event.message, event.t_host_s,
                           channel=event.details.get("channel"), value=event.details.get("value"))
            return
        if event.kind == "fault":
            faults = list(event.details.get("faults") or [])
            interlock = next((FAULT_INTERLOCKS[f] for f in faults if f in FAULT_INTERLOCKS), InterlockCause.DEVICE_FAULT)
            self._trip(interlock, event.source, f"reported by the device: {event.message}", event.t_host_s,
                       force=True, faults=faults, detected_by="device")
        elif event.kind == "connection":
            lost = link_loss(event)
            if lost is not None:
                self._trip(lost, event.source, event.message, event.t_host_s, force=True)

    # --- watchdog thread -------------------------------------------------------------------------------------
    def _watchdog_loop(self) -> None:
        next_t = time.monotonic()
        while self._running.is_set():
            self._alive_s = self.clock()
            self.check_telemetry(self._alive_s)
            next_t += self.watchdog_period_s
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.monotonic()

    def check_telemetry(self, t: float) -> None:
        """The time-based interlock: a device active in its last block that has sent none for TELEMETRY_LOST_S."""
        for device, active in list(self._active.items()):
            last = self._last_block_s.get(device, t)
            if active and t - last > TELEMETRY_LOST_S:
                self._trip(InterlockCause.TELEMETRY_LOST, device, f"no telemetry from {device} for "
                           f"{(t - last) * 1000:.0f} ms while it was active", t, force=True)
                self._active[device] = False  # unknown now; the device's own watchdog stops it anyway

    # --- tripping --------------------------------------------------------------------------------------------
    def _trip(self, interlock: InterlockCause, device: str, message: str, t_cause: float, *, force: bool = False,
              **details: object) -> Trip | None:
        with self._lock:
            latched = self._tripped.get(device)
            if latched is not None and not force:
                return None
            if latched is not None and latched.interlock == interlock:
                return None
            dev = self.devices.get(device)
            try:
                t_written = dev.stop_now(f"interlock: {interlock}") if dev is not None else float("nan")
                stop_result = "stop written"
            except Exception as exc:  # noqa: BLE001 - a dead link: the device's own watchdog is the backstop
                t_written = self.clock()
                stop_result = f"stop not written: {exc}"
            trip = Trip(interlock, device, message, t_cause, t_written, {**details, "stop": stop_result})
            if latched is None:
                self._tripped[device] = trip
        self.bus.publish_event(Event(
            t_written, "interlock", "high", "safety", f"INTERLOCK {interlock} on {device}: {message}",
            {"interlock": interlock, "cause": interlock, "device": device, "cause_t_host_s": t_cause, "stop_written_t_host_s": t_written,
             "latency_ms": round(trip.latency_ms, 3), "stop": stop_result, **details},
        ))
        self.trips.append(trip)  # listed once published: a trip a summary shows is already in the recording's queue
        for hook in list(self.on_trip):
            try:
                hook(trip)
            except Exception:  # noqa: BLE001
                log.exception("trip hook failed")
        return trip

    def _check_still_active(self, device: str, t: float) -> None:
        trip = self._tripped.get(device)
        if trip is None or not self._active.get(device) or t - trip.t_stop_written_s < RESEND_STOP_AFTER_S:
            return
        dev = self.devices.get(device)
        try:
            trip.t_stop_written_s = dev.stop_now("device still active after an interlock") if dev else t
        except Exception as exc:  # noqa: BLE001
            log.warning("re-sending stop to %s failed: %s", device, exc)
            trip.t_stop_written_s = t
        self.bus.publish_event(Event(t, "alarm", "high", "safety",
                                     f"{device} was still active {RESEND_STOP_AFTER_S * 1000:.0f} ms after the "
                                     f"{trip.interlock} interlock: stop sent again", {"device": device}))

