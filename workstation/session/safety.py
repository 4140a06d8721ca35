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

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from drivers.base import TELEMETRY_LOST_S
from drivers.codes import AbortCause, InterlockCause, link_loss
from drivers.silence import BLIND_GAP_S, BLIND_LIMIT_FACTOR, STALL_DETAIL, SilenceWatch, lost_words
from workstation.bus import BaseSink, CommandRecord, Event, SessionBus, detail_number, now_s
from workstation.errors import UserError
from workstation.session import roles
from workstation.session.kind_rules import (  # noqa: F401 - StepLimits, HOST_MAX_LAMP_TEMP_C: public here too
    HOST_MAX_LAMP_TEMP_C,
    KIND_RULES,
    UNKNOWN_KIND,
    KindRules,
    StepLimits,
)

log = logging.getLogger(__name__)

# A device still active this long after a trip's STOP gets another stop and an alarm. The time counts only while the
# monitor was looking (drivers/silence.py): samples read late after the workstation was held up (stamped with their
# late arrival) are no proof that the device ignored the STOP. A monitor that cannot look at all still resends once
# RESEND_STOP_WALL_S has passed on the wall clock (the same wall limit as the telemetry watchdog: 4 × 250 ms).
RESEND_STOP_AFTER_S = 0.1
RESEND_STOP_WALL_S = BLIND_LIMIT_FACTOR * TELEMETRY_LOST_S
WATCHDOG_PERIOD_S = 0.01
# The event the watchdog records when it was itself held up past drivers.silence.BLIND_GAP_S: that stretch is not
# counted as the devices' silence, and an audit of the recording (session/audit.py) leaves it out the same way.
STALL_EVENT = "stall"
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
LIMITS_EVENT = "limits"  # the event kind set_limits records
INTERLOCK_OWNER = "interlock"  # the monitor's start inhibit (drivers.interfaces.Device.inhibit_starts)


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


class ResetRefused(UserError):
    """The operator's reset was refused: a cause is still present. The message names it and what to do."""


class Stoppable(Protocol):
    """What the monitor needs of a device: its declarations (`INFO.kind`, `active_channel`: which rules apply, which
    channel means active) and a stop written at once, returning when it was written (raises if it cannot)."""

    name: str
    INFO: Any  # drivers.types.DriverInfo (the monitor reads its `kind`)
    active_channel: str | None

    def stop_now(self, why: str) -> float: ...

    def inhibit_starts(self, owner: str, why: str) -> None: ...

    def allow_starts(self, owner: str) -> None: ...


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
        self._causes_seen = 0  # every cause seen and every E-stop, latched or not (`reset`'s unless_seen_since)
        self.held: str | None = None  # a cause no reset clears for this rig's life (`hold`), in words
        self.held_cause: str | None = None  # its short name ("the recording failed"), the session's end reason
        self.held_kind: AbortCause | None = None  # what the session's abort cause is then (recording, store)
        self._active: dict[str, bool] = {}  # device -> emitting / needling, per the last block
        self._last_block_s: dict[str, float] = {}
        self._samples_seen: dict[str, SilenceWatch] = {}  # device -> the telemetry-lost watchdog (drivers/silence.py)
        self._since_stop: dict[str, SilenceWatch] = {}  # device -> time looked since its last STOP after a trip
        self._seen_lock = threading.Lock()  # blocks (reader threads) and looks (the watchdog) change the watches
        self._looked_s = clock()  # the watchdog's last look
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
        self._looked_s = self.clock()
        self._running.set()
        self._thread = threading.Thread(target=self._watchdog_loop, name="safety-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running.clear()
        if self._thread:
            self._thread.join(timeout=1)

    def verdict_pending(self) -> list[str]:
        """Devices last seen active, not judged since: their telemetry-lost verdict may still come (in TELEMETRY_LOST_S
        looked, or RESEND_STOP_WALL_S on the wall clock). A recording closes after it (rig.close_recording)."""
        return [device for device, active in list(self._active.items()) if active]

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
        """A trip is latched (on `device`, or on any); a `hold` counts as latched on every device."""
        with self._lock:
            if self.held is not None:
                return True
            return bool(self._tripped) if device is None else device in self._tripped

    def hold(self, why: str, cause: str, kind: AbortCause) -> None:
        """Latch a cause no reset clears while this monitor lives (the recording or store failed), after the E-stop that
        made it safe. `why`: what a refused reset, arm, start or resume says; `cause`: its name (Session.finish)."""
        self.held, self.held_cause, self.held_kind = why, cause, kind

    # how many causes and E-stops were seen so far: taken as the operator asks for a reset (`reset`)
    causes_seen = property(lambda self: self._causes_seen)

    def reset(self, who: str, unless_seen_since: int | None = None) -> list[Trip] | None:
        """The operator's reset: clears latched trips so a new arm and start are possible. None, clearing nothing, if
        a cause or E-stop came after `causes_seen` was `unless_seen_since` (fresh tester of issue 12, 19th session)."""
        with self._lock:  # the latch and the gates it shut, in one step (a trip in between keeps its gate shut)
            if unless_seen_since is not None and self._causes_seen != unless_seen_since:
                return None
            cleared, self._tripped = list(self._tripped.values()), {}
            for dev in self.devices.values():
                dev.allow_starts(INTERLOCK_OWNER)
        with self._seen_lock:
            self._since_stop.clear()
        if cleared:
            self.bus.publish_event(Event(
                self.clock(), "interlock_reset", "info", "operator",
                f"interlocks reset by {who}: " + ", ".join(t.interlock for t in cleared),
                {"who": who, "cleared": [t.interlock for t in cleared]},
            ))
        return cleared

    def needs_reset(self) -> bool:
        """An interlock is latched, or a device's last telemetry shows a latched fault: a reset can act (or, held,
        say why it cannot)."""
        with self._lock:
            if self._tripped or self.held is not None:
                return True
        return any(row.get("fault_bits", 0) for row in list(self._last_row.values()))

    def reset_checked(self, who: str, seen: int | None = None) -> list[Trip]:
        """The operator's reset, refused while a cause remains or when one came after `seen` (`causes_seen` when
        asked; default now); resets the devices' latched faults too (reset.py). Waits: not on the GUI thread."""
        from workstation.session.reset import reset_checked

        return reset_checked(self, who, seen)

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
            if (trip := self._trip(InterlockCause.ESTOP, n, f"E-stop ({source})", t, force=True, source=source))
        ]

    def heard(self, device: str, t: float) -> None:
        """A frame of the device's arrived at host time t (s): the telemetry-lost watchdog heard it (on_block; the
        audit, for a recorded frame whose samples it cannot judge)."""
        self._last_block_s[device] = t
        with self._seen_lock:
            self._silence(device, t).heard(t)

    def on_block(self, device: str, block: np.ndarray) -> None:
        if not len(block):  # drivers publish no empty blocks; a sample-less block proves nothing, not even life
            return
        t = float(block["t_host_s"][-1])
        self.heard(device, t)
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
        """A lamp over the limit, shutter closed: an alarm raised once, re-armed below the reset temperature."""
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
        (protocol rule), the device must report no fault, then the kind's own checks in order; the first fails trips."""
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
            backup_s = detail_number(record.args, "value", math.nan)  # a replayed file's may be unreadable
            if backup_s == backup_s:
                self._backup_s[record.device] = backup_s

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
                stall = {STALL_DETAIL: event.details[STALL_DETAIL]} if STALL_DETAIL in event.details else {}
                self._trip(lost, event.source, event.message, event.t_host_s, force=True, **stall)

    # --- watchdog thread -------------------------------------------------------------------------------------
    def _watchdog_loop(self) -> None:
        next_t = time.monotonic()
        while self._running.is_set():
            self._alive_s = self.clock()
            self.watch(self._alive_s)
            next_t += self.watchdog_period_s
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.monotonic()

    def watch(self, t: float) -> None:
        """The watchdog's look at host time t (s): a hold-up noted (`stall`), then check_telemetry (the audit's too)."""
        gap = t - self._looked_s
        self._looked_s = max(self._looked_s, t)
        with self._seen_lock:
            for watch in (*self._samples_seen.values(), *self._since_stop.values()):
                watch.looked(t)
        if gap > BLIND_GAP_S:
            self.bus.publish_event(Event(
                t, STALL_EVENT, "info", "safety", f"the workstation was held up for {gap * 1000:.0f} ms: the safety "
                "watchdog could not look (the devices' silence in that stretch is not counted against them)",
                {"from_t_host_s": round(t - gap, 6), "stall_s": round(gap, 6)}))
        self.check_telemetry(t)

    def check_telemetry(self, t: float) -> None:
        """Telemetry lost: an active device silent TELEMETRY_LOST_S looked, or 4 × that on the wall (silence.py)."""
        for device, active in list(self._active.items()):
            with self._seen_lock:
                watch = self._silence(device, t)
                lost = watch.lost(t, TELEMETRY_LOST_S)
                words, details = lost_words(device, watch, t, TELEMETRY_LOST_S) if lost else ("", {})
            if active and lost:
                why = words if STALL_DETAIL in details else f"{words} while it was active"
                self._trip(InterlockCause.TELEMETRY_LOST, device, why, t, force=True, **details)
                self._active[device] = False  # unknown now; the device's own watchdog stops it anyway

    def _silence(self, device: str, t: float) -> SilenceWatch:
        watch = self._samples_seen.get(device)
        if watch is None:
            watch = self._samples_seen[device] = SilenceWatch(t)
        return watch

    # --- tripping --------------------------------------------------------------------------------------------
    def _trip(self, interlock: InterlockCause, device: str, message: str, t_cause: float, *, force: bool = False,
              **details: object) -> Trip | None:
        with self._lock:
            self._causes_seen += 1
            latched = self._tripped.get(device)
            if latched is not None and not force:
                return None
            dev = self.devices.get(device)
            if latched is not None and latched.interlock == interlock:  # STOP pressed again: its STOP goes out again
                with contextlib.suppress(Exception):  # (a first one lost); the E-stop's only, never per block
                    if dev is not None and interlock == InterlockCause.ESTOP:
                        dev.stop_now("interlock: estop (again)")
                return None
            if dev is None:  # a cause named for a device this monitor has no handle on: nothing to stop here
                t_written, stop_result = self.clock(), "stop not written: no such device is connected here"
            else:
                try:  # shut before the STOP: a START another thread writes now goes out before it, or never
                    dev.inhibit_starts(INTERLOCK_OWNER, f"the {interlock} interlock is latched (reset it first)")
                except Exception:  # noqa: BLE001 - a driver's faulty gate must not keep the STOP from going out
                    log.exception("%s: its start gate could not be shut", device)
                try:
                    t_written = dev.stop_now(f"interlock: {interlock}")
                    stop_result = "stop written"
                except Exception as exc:  # noqa: BLE001 - a dead link: the device's own watchdog is the backstop
                    t_written = self.clock()
                    stop_result = f"stop not written: {exc}"
            trip = Trip(interlock, device, message, t_cause, t_written, {**details, "stop": stop_result})
            if latched is None:
                self._tripped[device] = trip
            if dev is not None:
                self._stop_written(device, t_written)
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

    def _stop_written(self, device: str, t: float) -> None:
        """Start counting the time looked since a STOP was written to `device` at host time t (s)."""
        with self._seen_lock:
            self._since_stop[device] = SilenceWatch(t)

    def _check_still_active(self, device: str, t: float) -> None:
        """A device whose block at t (s) still shows it active RESEND_STOP_AFTER_S after its trip's STOP (counted while
        the monitor looked; RESEND_STOP_WALL_S on the wall clock) gets another STOP and a high alarm."""
        trip = self._tripped.get(device)
        if trip is None or not self._active.get(device):
            return
        with self._seen_lock:
            since = self._since_stop.get(device)
            if since is None:
                since = self._since_stop[device] = SilenceWatch(trip.t_stop_written_s)
            since.looked(t)
            seen_s, wall_s = since.seen_s(t), since.wall_s(t)
        if seen_s < RESEND_STOP_AFTER_S and wall_s < RESEND_STOP_WALL_S:
            return
        dev = self.devices.get(device)
        try:
            t_written = dev.stop_now("device still active after an interlock") if dev else t
        except Exception as exc:  # noqa: BLE001
            log.warning("re-sending stop to %s failed: %s", device, exc)
            t_written = t
        trip.t_stop_written_s = t_written
        self._stop_written(device, t_written)
        if seen_s >= RESEND_STOP_AFTER_S:
            message = (f"{device} was still active {seen_s * 1000:.0f} ms after the {trip.interlock} interlock: "
                       "stop sent again")
        else:
            message = (f"{device} reported itself active after the {trip.interlock} interlock, and the workstation "
                       f"could not look for {wall_s - seen_s:.1f} s since: stop sent again")
        self.bus.publish_event(Event(t, "alarm", "high", "safety", message,
                                     {"device": device, "interlock": trip.interlock, "seen_after_stop_s": round(seen_s, 4),
                                      "after_stop_s": round(wall_s, 4)}))
