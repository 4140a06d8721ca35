"""Audit a recording against this program's safety monitor: would the interlocks trip as they did?

The recording's telemetry is fed, frame by frame in arrival order, to a fresh `SafetyMonitor` whose clock is the
recording's own time, together with the inputs the monitor had live: the step limits the session set (`limits`
events), the devices' fault and connection reports, the operator's E-stops and resets. Its 10 ms watchdog is stepped
through the recording's time, to one period past its end (a telemetry-lost trip made in that last period is shown
but not counted: the live watchdog's ticks fell on another grid). The devices are stand-ins that note each stop. The trips it makes are then matched
with the recorded ones (same interlock, same device, cause within `tolerance_s`):

- *reproduced*: recorded and made again;
- *missing*: recorded, not made now: the monitor changed, or the recording lacks an input;
- *extra*: made now, not recorded: this monitor would have stopped a device that the recorded one did not.

An engineer runs it on field recordings after changing the monitor, or to check what a session's interlocks did.
Recordings made before `limits` events existed are audited with permissive limits (light and needling allowed, no
dose or depth limit): the protocol-rule, dose, cap and depth interlocks cannot be judged, and the audit says so.
An input the file holds but that cannot be read is not replaced by a made-up value, and what judges by it is *not
judged*: its recorded and replayed trips are listed apart, never counted as missing or extra. A limit that is
missing, text, or null where the details' `non_finite` note does not name it "inf" (or limits whose details cannot
be read at all) is applied as unlimited, and the interlocks that judge by it (`kind_rules.LIMIT_INTERLOCKS`) are not
judged; a stall without its start leaves the watchdog's `telemetry_lost` unjudged, and a recorded one decided on the
wall-clock bound while the workstation was held up (its details' STALL_DETAIL) is not judged; a recorded trip without a
readable interlock or device is never compared, and a trip made within `tolerance_s` of it is set apart; telemetry
samples with a non-finite value are skipped (their frames still count as heard by the watchdog), which leaves the
interlocks judged on samples (`kind_rules.SAMPLE_INTERLOCKS`) unjudged. An input at no time (a host time that is
NaN or ±inf) is not applied: it is UNREADABLE, and what it judges is not judged (a change of limits: the limit
interlocks; a reset, an E-stop, a device's report: every interlock, since each changes what is latched).
Telemetry the recorder lost (`/losses`: the queue ceiling, a full disk, blocks sent after it stopped) is not judged:
its first and last lost frames are heard by the watchdog, and `LOSS_INTERLOCKS` on that device are not judged from
the first until it is seen inactive again, latched as before the loss, or to the end (recording/lost_spans.py).
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from drivers.codes import InterlockCause, LinkEvent
from drivers.silence import STALL_DETAIL
from workstation.bus import Event, SessionBus, detail_number
from workstation.recording.lost_spans import LostSpan, lost_spans, merged_spans
from workstation.recording.reader import DeviceInfo, Recording
from workstation.session.audit_frames import recorded_frames
from workstation.session.kind_rules import LIMIT_INTERLOCKS, SAMPLE_INTERLOCKS
from workstation.session.roles import recorded_active_channel
from workstation.session.safety import LIMITS_EVENT, STALL_EVENT, WATCHDOG_PERIOD_S, SafetyMonitor, StepLimits
from workstation.words import counted, seconds

INF = float("inf")
ALL_INTERLOCKS = tuple(i.value for i in InterlockCause)
LIMITS_JUDGE = tuple(dict.fromkeys(i.value for which in LIMIT_INTERLOCKS.values() for i in which))  # by any limit
PERMISSIVE = StepLimits(area_id="(not recorded)", light_allowed=True, needling_allowed=True, target_dose_mj_cm2=INF,
                        area_dose_cap_mj_cm2=INF, depth_limit_mm=INF)
# What an unreadable limit is applied as (never a made-up limit: its interlocks are then not judged)
UNLIMITED: dict[str, object] = {"area_id": "(unreadable)", "light_allowed": True, "needling_allowed": True,
                                "area_dose_before_mj_cm2": 0.0}
# What a device's lost telemetry leaves unjudged on it: what its samples showed, and its silence (the watchdog's)
LOSS_INTERLOCKS = (InterlockCause.TELEMETRY_LOST.value, *(i.value for i in SAMPLE_INTERLOCKS))


@dataclass(frozen=True, slots=True)
class AuditTrip:
    interlock: str
    device: str
    t_cause_s: float  # session time
    message: str


@dataclass
class AuditResult:
    limits_recorded: int  # how many limit changes the recording holds (0: an older recording)
    recorded: list[AuditTrip]
    replayed: list[AuditTrip]
    reproduced: list[tuple[AuditTrip, AuditTrip]] = field(default_factory=list)  # (recorded, replayed)
    missing: list[AuditTrip] = field(default_factory=list)
    extra: list[AuditTrip] = field(default_factory=list)
    # made now by the watchdog within one period of the recording's end: the live watchdog ticked on another grid
    # and may have come after the recording closed, so these are shown and not counted
    at_end: list[AuditTrip] = field(default_factory=list)
    blocks: int = 0
    nonfinite_samples: int = 0  # samples with a NaN or ±inf channel, not fed to the monitor (finite_rows)
    # inputs the file holds but that could not be read: (session time s, what, the interlocks it leaves unjudged)
    unreadable: list[tuple[float, str, tuple[str, ...]]] = field(default_factory=list)
    # recorded or replayed trips of an interlock not judged (an input it needs is unreadable): (which, trip)
    not_judged: list[tuple[str, AuditTrip]] = field(default_factory=list)
    limits_unreadable: int = 0  # of the limit changes, how many had a field that could not be read
    trips_unreadable: int = 0  # recorded trips without a readable interlock or device (never compared)
    lost: list[LostSpan] = field(default_factory=list)  # telemetry the recorder lost: LOSS_INTERLOCKS not judged
    held_up: list[AuditTrip] = field(default_factory=list)  # recorded on the wall-clock bound in a stall: not judged

    @property
    def same(self) -> bool:
        return not self.missing and not self.extra

    @property
    def judged_in_full(self) -> bool:
        return not any(which for _t, _what, which in self.unreadable) and not self.lost and not self.held_up

    def lost_at(self, a: AuditTrip) -> bool:  # a trip the recorder's lost telemetry leaves unjudged
        return a.interlock in LOSS_INTERLOCKS and any(s.covers(a.device, a.t_cause_s) for s in self.lost)


class _Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass(frozen=True, slots=True)
class _Declared:
    kind: str  # the recorded driver_kind


class _StandIn:
    """A device for the monitor to stop: it notes the stop, written at the recording's time. It declares what the
    recording says its driver declared (kind; active channel per `roles.recorded_active_channel`)."""

    def __init__(self, name: str, clock: _Clock, info: DeviceInfo) -> None:
        self.name, self.clock, self.stops = name, clock, []
        self.INFO = _Declared(info.driver_kind)
        self.active_channel = recorded_active_channel(info)

    def stop_now(self, why: str) -> float:
        self.stops.append((self.clock.t, why))
        return self.clock.t

    def inhibit_starts(self, owner: str, why: str) -> None:
        """Nothing to shut: a recorded device is never started."""

    def allow_starts(self, owner: str) -> None:
        """Nothing to open."""


def audit(rec: Recording, tolerance_s: float = 0.05) -> AuditResult:
    t0 = rec.meta.t0_host_s
    if not math.isfinite(t0):  # a damaged or edited root attribute: no session time, nothing judged (exit 3)
        return AuditResult(sum(1 for e in rec.events if e.kind == LIMITS_EVENT), [], [], unreadable=[(
            math.nan, "the recording's start (t0_host_s) is not a finite time: no session time can be given, so "
            "nothing is replayed or compared", ALL_INTERLOCKS)],
            trips_unreadable=sum(1 for e in rec.events if e.kind == "interlock"))
    clock = _Clock(t0)
    devices = {name: _StandIn(name, clock, info) for name, info in rec.devices.items()}
    monitor = SafetyMonitor(SessionBus(), dict(devices), clock=clock)
    limits = [e for e in rec.events if e.kind == LIMITS_EVENT]
    if not limits:
        monitor.limits = PERMISSIVE

    inputs: list[tuple[float, int, str, Any]] = []
    unreadable: list[tuple[float, str, tuple[str, ...]]] = []
    estops_seen: set[float] = set()

    def feed(t: float, kind: str, item: Any, what: str, which: tuple[str, ...]) -> None:
        """An input at host time t; at no time (NaN, ±inf: a damaged or foreign file) it is not fed, and named."""
        if math.isfinite(t):
            inputs.append((t, 0, kind, item))
        else:
            unreadable.append((math.nan, f"{what} at no time (its host time is not finite): not applied", which))

    for e in rec.events:
        if e.kind == "interlock" and e.details.get("interlock") == InterlockCause.ESTOP:
            t_cause = detail_number(e.details, "cause_t_host_s", e.t_host_s)
            if t_cause not in estops_seen:  # one press trips every device: replay it once
                estops_seen.add(t_cause)
                feed(t_cause, "estop", e, "an E-stop", ALL_INTERLOCKS)
        elif e.kind == LIMITS_EVENT:  # a change of the limits missed leaves the earlier ones in force
            feed(e.t_host_s, "event", e, "step limits", LIMITS_JUDGE)
        elif e.kind == "interlock_reset" or (e.kind in ("fault", "connection", "implausible") and e.source in devices):
            # a reset or a device's report missed changes what is latched: every interlock after it
            feed(e.t_host_s, "event", e, f"a {e.kind} event" + (f" of the {e.source}" if e.source in devices else ""),
                 ALL_INTERLOCKS)
    for c in rec.commands:  # the backup times the devices acknowledged (the `backup_time` interlock watches them)
        if c.command == "set" and c.result == "ack" and c.args.get("param") == "backup_time_s":
            feed(c.t_reply_s if math.isfinite(c.t_reply_s) else c.t_host_s, "command", c,
                 f"the backup time acknowledged by the {c.device}", (InterlockCause.BACKUP_TIME.value,))
    spans = lost_spans(rec)  # in session time; its first and last lost frames arrived, at these host times
    inputs += [(t0 + t, 0, "lost", (s, t == s.t_first_s)) for s in spans for t in (s.t_first_s, s.t_last_s)
               if math.isfinite(t0 + t)]
    skipped: dict[str, list] = {}
    streams = [iter(sorted(inputs, key=lambda x: x[0]))] + [recorded_frames(rec, d, skipped) for d in rec.devices]
    order = itertools.count()
    merged = heapq.merge(*(((t, prio, next(order), kind, item) for t, prio, kind, item in s) for s in streams))

    blocks = 0
    next_tick = t0

    # Where the live watchdog was held up (its `stall` events): it did not look then, so neither does this one.
    stalls = sorted((t_from, e.t_host_s) for e in rec.events
                    if e.kind == STALL_EVENT and e.source == "safety" and math.isfinite(e.t_host_s)
                    and math.isfinite(t_from := detail_number(e.details, "from_t_host_s", math.nan)))
    unreadable += [(e.t_host_s - t0, "a stall of the watchdog without its start or end (from_t_host_s or its host "
                    "time: not a value the monitor can use): its stretch cannot be left out",
                    (InterlockCause.TELEMETRY_LOST.value,)) for e in rec.events
                   if e.kind == STALL_EVENT and e.source == "safety"
                   and not (math.isfinite(e.t_host_s)
                            and math.isfinite(detail_number(e.details, "from_t_host_s", math.nan)))]

    looked = [-math.inf]  # the last look made

    def look(at: float) -> None:
        clock.t = looked[0] = at
        monitor.watch(at)

    def watchdog_until(t: float) -> float:  # the watchdog thread, every 10 ms of the recording's time
        tick = next_tick
        while tick <= t:
            if not monitor.verdict_pending():
                # No device active: no look can trip anything before the next input (at t, the stream is in time
                # order), so the looks are skipped to the last one before it, on the same grid (that one is made: a
                # device made active at t is then watched from a look 10 ms before, as live): a recording whose
                # next time is hours (or, damaged, 10^6 s) on is audited in the time its inputs take.
                tick += math.floor((t - tick) / WATCHDOG_PERIOD_S) * WATCHDOG_PERIOD_S
            while stalls and stalls[0][1] < tick:
                stalls.pop(0)
            if stalls and stalls[0][0] < tick:  # inside a stall: the next look is where it ended
                # Its start is a look the live watchdog made (its last before the hold-up), off this 10 ms grid: made
                # here too, or a trip at that look (a fresh tester of issue 12: its cause at the stall's start) is
                # lost with the stretch skipped, and the audit says the trips differ.
                started, tick = stalls.pop(0)
                if started > looked[0]:
                    look(started)
                if tick > t:
                    break
            look(tick)
            # never the same tick again: from ~10^14 s on, 10 ms is below a double's resolution (a time of 1e300
            # made the audit look at the same instant for ever: a fresh tester of issue 12, eighteenth session)
            tick = max(tick + WATCHDOG_PERIOD_S, math.nextafter(tick, math.inf))
        return tick

    for t, _prio, _n, kind, item in merged:
        next_tick = watchdog_until(t)
        clock.t = t
        if kind == "estop":
            monitor.estop(str(item.details.get("source", "recorded E-stop")))
        elif kind == "event":
            _feed_event(monitor, item, unreadable, t0, rec)
        elif kind == "command":
            monitor.on_command(item)
        elif kind == "lost":  # lost frames arrived: the live watchdog heard them (at the first, the latch is noted)
            item[0].latch = monitor.tripped.get(item[0].device) if item[1] else item[0].latch
            monitor.heard(item[0].device, t)
        else:
            if item is None:  # a frame whose every sample was skipped: it still arrived
                monitor.heard(kind, t)
            else:
                monitor.on_block(kind, item)
                blocks += 1
            for s in (s for s in spans if s.device == kind and s.until_s == INF):
                s.seen(t - t0, monitor.is_active(kind), monitor.tripped.get(kind))
    # The live watchdog ran on until the recording closed (its last trip may be the last thing recorded); its ticks
    # fell on another 10 ms grid, so one more period is allowed.
    watchdog_until(t0 + rec.duration_s + WATCHDOG_PERIOD_S)

    for device, (n, t_first) in skipped.items():
        # none of them with a time (a fresh tester of issue 12: "UNREADABLE at 0.000 s"): said at no time
        unreadable.append((math.nan if t_first is None else t_first - t0, f"{counted(n, 'sample')} of the {device}'s "
                           "telemetry with a non-finite value (NaN or ±inf; not a value the monitor can use): skipped, "
                           "their frames heard by the watchdog", tuple(i.value for i in SAMPLE_INTERLOCKS)))
    recorded: list[AuditTrip] = []
    held_up: list[AuditTrip] = []
    trips_at_no_time = 0
    unread_trips: list[tuple[float, float, str | None, str | None]] = []  # (from, to, interlock, device)
    before = -INF  # the session time the previous interlock event was recorded at
    for e in (e for e in rec.events if e.kind == "interlock"):
        interlock = e.details["interlock"] if "interlock" in e.details else e.details.get("cause", _MISSING)
        device = e.details.get("device", _MISSING)
        cause = detail_number(e.details, "cause_t_host_s", math.nan)  # unreadable: its cause came before it was
        t, since = (cause - t0, None) if math.isfinite(cause) else (e.t_host_s - t0, before)  # recorded, after the last
        before = e.t_host_s - t0 if math.isfinite(e.t_host_s - t0) else before
        if not math.isfinite(t):  # at no time: never compared; what it would be compared with is not judged
            trips_at_no_time += 1
            unreadable.append((math.nan, f"a recorded {interlock if _name(interlock) else ''} trip"
                               + (f" on {device}" if _name(device) else "") + " at no time (its host time is not "
                               "finite): never compared", (interlock,) if _name(interlock) else ALL_INTERLOCKS))
        elif _name(interlock) and _name(device):
            recorded.append(AuditTrip(interlock, device, t, e.message))
            if STALL_DETAIL in e.details and "seen_silence_s" in e.details:  # the stall this audit leaves out decided
                held_up.append(recorded[-1])  # it, as the live watchdog's did (a fresh tester of issue 12: "DIFFER")
        else:
            unread_trips.append((t - tolerance_s if since is None else since, t + tolerance_s,
                                 interlock if _name(interlock) else None, device if _name(device) else None))
            unreadable.append(_unreadable_trip(t, since, interlock, device, tolerance_s))
    replayed = [AuditTrip(tr.interlock, tr.device, tr.t_cause_s - t0, tr.message) for tr in monitor.trips]
    result = AuditResult(len(limits), recorded, replayed, blocks=blocks,
                         nonfinite_samples=sum(n for n, _t in skipped.values()),
                         unreadable=sorted(unreadable, key=lambda u: (not math.isfinite(u[0]), u[0] if math.isfinite(u[0]) else 0.0, u[1])),
                         limits_unreadable=sum(1 for e in limits if StepLimits.unreadable(_limits(e, rec))
                                               or not math.isfinite(e.t_host_s)),  # at no time: not applied
                         trips_unreadable=len(unread_trips) + trips_at_no_time, lost=merged_spans(spans),
                         held_up=held_up)
    unjudged = {i for _t, _what, which in unreadable for i in which}
    unmatched = list(replayed)
    for r in recorded:
        match = next((a for a in unmatched if a.interlock == r.interlock and a.device == r.device
                      and abs(a.t_cause_s - r.t_cause_s) <= tolerance_s), None)
        if match is None:
            result.missing.append(r)
        else:
            unmatched.remove(match)
            result.reproduced.append((r, match))
    end_s = rec.duration_s
    result.at_end = [a for a in unmatched if a.interlock == InterlockCause.TELEMETRY_LOST
                     and a.t_cause_s > end_s - WATCHDOG_PERIOD_S]
    result.extra = [a for a in unmatched if a not in result.at_end]

    def near_unreadable(a: AuditTrip) -> bool:  # made where a recorded trip could not be read
        return any(since <= a.t_cause_s <= until and il in (None, a.interlock) and dev in (None, a.device)
                   for since, until, il, dev in unread_trips)

    def not_judged(a: AuditTrip, made_now: bool) -> bool:
        return (a.interlock in unjudged or result.lost_at(a) or (made_now and near_unreadable(a))
                or (not made_now and any(a is h for h in result.held_up)))

    result.not_judged = ([("recorded", a) for a in result.missing if not_judged(a, False)]
                         + [("made now", a) for a in result.extra if not_judged(a, True)])
    result.missing = [a for a in result.missing if not not_judged(a, False)]
    result.extra = [a for a in result.extra if not not_judged(a, True)]
    return result


_MISSING = object()


def _unreadable_trip(t: float, since: float | None, interlock: object, device: object,
                     tolerance_s: float) -> tuple[float, str, tuple[str, ...]]:
    """The UNREADABLE entry of a recorded trip whose interlock or device is not a name, in words. `since`: None when
    `t` is its cause's time, else the previous trip's (`t` is then when it was recorded, its cause before that)."""
    il, dev = (interlock if _name(interlock) else ""), (device if _name(device) else "")
    bad = " and ".join(f"its {what} is {_kind_of(v)}" for what, v in (("interlock", interlock), ("device", device))
                       if not _name(v))
    trip = " ".join(w for w in ("a recorded", il, "trip", dev and f"on {dev}") if w)
    return (t, f"{trip}: {bad}, not a name the monitor can use: never compared",
            (f"{il or 'a trip'} made within {tolerance_s * 1000:.0f} ms of {t:.3f} s" if since is None else
             f"{il or 'a trip'} made " + (f"from {since:.3f} s " if math.isfinite(since) else "")
             + f"to {t + tolerance_s:.3f} s (its cause came before it was recorded, at {t:.3f} s)",))


def _name(v: object) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _kind_of(v: object) -> str:
    """What an unreadable detail is, in words (never its raw form: no `None`, no brackets in a message)."""
    if v is _MISSING or v is None or isinstance(v, str | bool):
        return "missing" if v is _MISSING else "null" if v is None else "empty" if isinstance(v, str) else "true or false"
    return {list: "a list", dict: "an object"}.get(type(v), "a number" if isinstance(v, int | float) else "not text")


# Format 1 wrote an infinite limit as a bare null (no `non_finite` note): there, a null in these meant no limit
FORMAT1_NULL_IS_NO_LIMIT = ("target_dose_mj_cm2", "area_dose_cap_mj_cm2", "depth_limit_mm", "dose_tolerance_mj_cm2",
                            "depth_tolerance_mm", "max_lamp_temp_c")


def _limits(e: Event, rec: Recording) -> Any:
    """A limits event's details as this format reads them: a format 1 file's bare nulls noted as the infinite
    limits they meant (docs/recording-format.md, format 1)."""
    d = e.details
    if rec.meta.format_version >= 2 or not isinstance(d, dict):
        return d
    noted = {f"/{k}": "inf" for k in FORMAT1_NULL_IS_NO_LIMIT if k in d and d[k] is None}
    return {**d, "non_finite": noted} if noted else d


def _feed_event(monitor: SafetyMonitor, e: Event, unreadable: list[tuple[float, str, tuple[str, ...]]],
                t0: float, rec: Recording) -> None:
    if e.kind == LIMITS_EVENT:
        details = _limits(e, rec)
        limits = StepLimits.from_details(details)
        bad = StepLimits.unreadable(details)
        if bad:  # applied as unlimited, and the interlocks that judge by them are not judged
            limits = replace(limits, **{f: UNLIMITED.get(f, INF) for f in bad})
            which = tuple(dict.fromkeys(i.value for f in bad for i in LIMIT_INTERLOCKS.get(f, ())))
            what = ("step limits with no readable field" if len(bad) == len(fields(StepLimits))
                    else f"step limits {', '.join(bad)}")
            unreadable.append((e.t_host_s - t0, f"{what} (not a value the monitor can use): applied as unlimited",
                               which))
        monitor.set_limits(limits)
    elif e.kind == "interlock_reset":
        monitor.reset(str(e.details.get("who", "recorded reset")))
    elif e.kind == "connection" and "link" not in e.details and "disconnected" in e.message:
        # Recorded before connection events carried codes (drivers/codes.py): the driver's words were the only sign.
        monitor.on_event(Event(e.t_host_s, e.kind, e.severity, e.source, e.message,
                               {**e.details, "link": LinkEvent.DISCONNECTED}))
    else:
        monitor.on_event(e)


def format_audit(rec: Recording, r: AuditResult) -> str:
    blocks = counted(r.blocks, "telemetry block")
    lines = [f"audit of {rec.path.name} against this program's safety monitor ({blocks})"]
    if r.nonfinite_samples:
        lines.append(f"  {counted(r.nonfinite_samples, 'sample')} with a non-finite value (NaN or ±inf) skipped: not "
                     "measurements (a driver never publishes one), so not fed to the monitor's checks (their frames "
                     "still count as heard by its watchdog)")
    if r.limits_unreadable:
        lines.append(f"  step limits: {counted(r.limits_recorded, 'change')} recorded, {r.limits_unreadable} of them "
                     f"with fields that cannot be read or at no time (applied as unlimited there, or not at all: see "
                     "UNREADABLE), "
                     f"{r.limits_recorded - r.limits_unreadable} applied as recorded")
    elif r.limits_recorded:
        lines.append(f"  step limits: {counted(r.limits_recorded, 'change')} recorded and applied")
    else:
        lines.append("  step limits: NONE recorded (no step ran, or a recording older than limits events): audited with light and "
                     "needling allowed and no dose or depth limit, so the protocol-rule, target-dose, area-cap and "
                     "depth interlocks are not judged")
    for t, what, which in r.unreadable:
        lines.append(f"  UNREADABLE{f' at {seconds(t)}' if math.isfinite(t) else ''}: {what}, so "
                     + (f"{', '.join(which)} {'is' if len(which) == 1 else 'are'} not judged" if which
                        else "nothing judged depends on it"))
    lines += [f"  LOST BY THE RECORDER {s.reach()}: {s.words(LOSS_INTERLOCKS)}" for s in r.lost]
    lines.append(f"  trips: {len(r.recorded)} recorded, {len(r.replayed)} made by the audit"
                 + (f" ({r.trips_unreadable} more recorded, unreadable: not compared)" if r.trips_unreadable else ""))
    for rec_trip, new in r.reproduced:
        lines.append(f"  reproduced: {rec_trip.interlock} on {rec_trip.device} at {seconds(rec_trip.t_cause_s)} "
                     f"(cause {1000 * (new.t_cause_s - rec_trip.t_cause_s):+.1f} ms)")
    for t in r.missing:
        lines.append(f"  MISSING (recorded, not made now): {t.interlock} on {t.device} at {seconds(t.t_cause_s)}: "
                     f"{t.message}")
    for t in r.extra:
        lines.append(f"  EXTRA (made now, not recorded): {t.interlock} on {t.device} at {seconds(t.t_cause_s)}: "
                     f"{t.message}")
    for t in r.at_end:
        lines.append(f"  at the end, not counted: {t.interlock} on {t.device} at {seconds(t.t_cause_s)}, within "
                     f"{WATCHDOG_PERIOD_S * 1000:.0f} ms of the recording's end (the live watchdog may have ticked "
                     "after the recording closed)")
    for who, t in r.not_judged:
        why = ("its telemetry there was lost by the recorder" if r.lost_at(t) else "decided while the workstation "
               "was held up, a stretch the audit leaves out" if any(t is h for h in r.held_up)
               else "an input it needs is unreadable")
        lines.append(f"  not judged ({who}; {why}): {t.interlock} on {t.device} at {seconds(t.t_cause_s)}: {t.message}")
    held = f" in the {rec.duration_s:.1f} s the file holds" if rec.partial else ""
    if not r.same:
        lines.append(f"result: the trips DIFFER{held}")
    elif not r.judged_in_full:
        which = sorted({i for _t, _w, which in r.unreadable for i in which})
        why = [f"{', '.join(which)} (an input is unreadable)"] * bool(which) + [" and ".join(
            f"the {s.device}'s telemetry {s.reach()}" for s in r.lost) + " (lost by the recorder)"] * bool(r.lost) + [
            f"{counted(len(r.held_up), 'trip')} decided while the workstation was held up"] * bool(r.held_up)
        lines.append(f"result: the same trips where they could be judged{held}; NOT JUDGED IN FULL: {'; '.join(why)}"
                     + ("; and the file is partial" if rec.partial else ""))
    elif rec.partial:  # a crash, a full disk: what came after the file's last row was never recorded nor judged
        lines.append(f"result: the same trips{held}; NOT JUDGED IN FULL: the file is partial, so what happened "
                     "after its last row is not in it")
    else:
        lines.append("result: the same trips")
    return "\n".join(lines)


def audit_exit_code(rec: Recording, r: AuditResult) -> int:
    """`main.py audit`'s exit status: 1 the trips differ, 3 the same where judged but not judged in full (an input
    unreadable, or a partial file), 0 the same trips over a whole recording."""
    if not r.same:
        return 1
    return 0 if r.judged_in_full and not rec.partial else 3

