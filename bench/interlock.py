"""Interlock benchmark: trip every kind of interlock many times through the real drivers and the device emulators.

    python bench/interlock.py [--trips 200] [--seed 1] [--json]

One `Rig.simulation` (emulators on ptys, the real drivers, the safety monitor subscribed first). For each trip kind,
`--trips` times: reset the latched trips (`monitor.reset`), RESET the device if a fault is latched, set the step's
limits, SET, ARM, START, wait until the emulator emits / needles, cause the trip, then wait for the `interlock` event
and for the emulator to become physically safe (shutter closed / rotor below 1 Hz).

Kinds (light): contact lost during emission (emulator), host target dose (device target above the host's), protocol
rule (UV during a step that allows none), over-temperature (emulator), E-stop (monitor.estop from another thread),
sensor implausible (the emulator's `sensor_glitch`: one sample at −327.68 °C, rejected by the driver), backup time
seen by the host (`sensor_low` 0.5 and `backup_timer_failure`: the exposure runs past its backup time) and backup
time enforced by the device (`sensor_low` 0.5 alone: the device stops at its backup time and reports the fault).
Kinds (pen): depth limit (depth SET above the step's limit while needling), motor jam (emulator).

Two latencies per trip:
- host: the event's `latency_ms`, from the arrival of the block (or FAULT frame, or the E-stop call) that showed the
  cause to the STOP command written;
- device: from the cause to the device physically safe, `state().last_stop_at` minus the cause instant. The cause
  instant is the emulator's `injected_at[...]` for emulator-side causes (contact, heat, jam) and the event's
  `cause_t_host_s` for host-side ones (target dose, protocol rule, E-stop, depth limit); both are time.monotonic of
  this process. For the light this is the shutter latency (`shutter_latency_p99_ms`, light kinds only); for the pen
  it is the time to the rotor below 1 Hz, reported per kind (the braking physics alone takes ≈ 45 ms from 100 Hz).

`trips_without_stop` counts trips whose event says the stop was not written, or after which the emulator was not
inactive within 0.5 s of the stop written. Targets: host p99 < 5 ms; light cause → shutter closed p99 < 20 ms.

For `target_dose` it also reports the dose the device gave past the host's threshold (target + tolerance) when it
had closed (`dose_past_threshold_*_mj_cm2` in per_kind): the unit test used to assert it below 4.4 mJ/cm² (110 mW/cm²
× 40 ms), a timing claim that load breaks; it is measured here.

With --json the last line is one JSON object with trips, host_latency_median_ms, host_latency_p99_ms,
host_latency_max_ms, shutter_latency_p99_ms, trips_without_stop and per_kind.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drivers.base import DeviceError  # noqa: E402
from drivers.codes import InterlockCause  # noqa: E402
from workstation.bus import CommandRecord, Event, now_s  # noqa: E402
from workstation.session.rig import Rig  # noqa: E402
from workstation.session.safety import StepLimits  # noqa: E402

TARGETS = {"host_latency_p99_ms": 5.0, "shutter_latency_p99_ms": 20.0}
INACTIVE_WITHIN_S = 0.5
TRIP_TIMEOUT_S = 2.0
ACTIVE_TIMEOUT_S = 1.0
POLL_S = 0.001
LIGHT_STEP = dict(area_id="BENCH-L", light_allowed=True)
PEN_STEP = dict(area_id="BENCH-P", needling_allowed=True)
LONG_TARGET_MJ_CM2 = 20.0  # exposures the bench cuts short itself: ≈ 200 ms of margin at ≈ 96 mW/cm²


class BenchFailure(Exception):
    """The benchmark could not run; the message is a sentence for the user."""


class Tap:
    """A bus sink (subscribed after the monitor) that keeps interlock events, alarms and each device's last block."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.interlocks: list[Event] = []
        self.alarms: list[Event] = []
        self.got_trip = threading.Event()
        self.last_block: dict[str, tuple[float, bool]] = {}

    def clear(self) -> None:
        with self._lock:
            self.interlocks, self.alarms = [], []
            self.got_trip.clear()

    def on_block(self, device: str, block: np.ndarray) -> None:
        if len(block):
            flag = "shutter_open" if "shutter_open" in block.dtype.names else "running"
            self.last_block[device] = (float(block["t_host_s"][-1]), bool(block[flag][-1]))

    def on_event(self, event: Event) -> None:
        if event.kind == "interlock":
            with self._lock:
                self.interlocks.append(event)
            self.got_trip.set()
        elif event.kind == "alarm":
            with self._lock:
                self.alarms.append(event)

    def on_command(self, record: CommandRecord) -> None:
        return None

    def first_trip(self, device: str) -> Event | None:
        with self._lock:
            return next((e for e in self.interlocks if e.details.get("device") == device), None)


@dataclass
class KindStats:
    name: str
    device: str
    expected: str  # the interlock this kind should trip
    host_ms: list[float] = field(default_factory=list)
    device_ms: list[float] = field(default_factory=list)
    without_stop: int = 0
    other_interlock: dict[str, int] = field(default_factory=dict)  # first trip was another interlock than expected
    no_trip: int = 0  # attempts where no interlock came (e.g. the exposure ended before the cause)
    alarms: int = 0  # "still active after an interlock: stop sent again"
    detected_by_device: int = 0  # the first trip came from the device's FAULT report, not from a block's values
    dose_past_threshold: list[float] = field(default_factory=list)  # host dose kinds: mJ/cm² the device gave past it
    notes: list[str] = field(default_factory=list)


@dataclass
class Kind:
    name: str
    device: str
    expected: str
    prepare: Callable[[], None]  # limits, SET; before ARM
    cause: Callable[[], str | None]  # after START and active: cause the trip; returns the emulator's injected_at key
    wait_active: bool = True
    cleanup: Callable[[], None] | None = None  # after the trip: remove the cause


class Bench:
    def __init__(self, rig: Rig, tap: Tap) -> None:
        self.rig, self.tap = rig, tap
        self.light, self.pen = rig.devices["light"], rig.devices["pen"]
        self.emu_light, self.emu_pen = rig.emulators["light"], rig.emulators["pen"]

    # --- the kinds ----------------------------------------------------------------------------------------------
    def kinds(self) -> list[Kind]:
        return [
            Kind("contact_lost", "light", InterlockCause.CONTACT_LOST, self._light_long,
                 lambda: (self.emu_light.contact_lost(), "set_contact")[1],
                 cleanup=lambda: self.emu_light.set_contact(True)),
            Kind("target_dose", "light", InterlockCause.TARGET_DOSE, self._light_host_target, lambda: None,
                 wait_active=False),
            Kind("protocol_rule", "light", InterlockCause.PROTOCOL_RULE, self._light_no_uv, lambda: None,
                 wait_active=False),
            Kind("over_temperature", "light", InterlockCause.OVER_TEMPERATURE, self._light_long,
                 lambda: (self.emu_light.over_temperature(), "over_temperature")[1],
                 cleanup=lambda: self.emu_light.clear_faults_cause()),
            Kind("estop", "light", InterlockCause.ESTOP, self._light_long, self._estop_from_thread),
            Kind("sensor_implausible", "light", InterlockCause.SENSOR_IMPLAUSIBLE, self._light_long,
                 lambda: (self.emu_light.sensor_glitch(), "sensor_glitch")[1]),
            Kind("backup_time", "light", InterlockCause.BACKUP_TIME, lambda: self._light_sensor_low(timer_ok=False),
                 lambda: None, wait_active=False, cleanup=self._light_sensor_fixed),
            Kind("backup_device", "light", InterlockCause.BACKUP_TIME, lambda: self._light_sensor_low(timer_ok=True),
                 lambda: None, wait_active=False, cleanup=self._light_sensor_fixed),
            Kind("depth_limit", "pen", InterlockCause.DEPTH_LIMIT, self._pen_within_limit, self._pen_too_deep),
            Kind("motor_jam", "pen", InterlockCause.DEVICE_FAULT, self._pen_within_limit,
                 lambda: (self.emu_pen.motor_jam(), "motor_jam")[1],
                 cleanup=lambda: self.emu_pen.clear_faults_cause()),
        ]

    def _light_long(self) -> None:
        self.rig.monitor.set_limits(StepLimits(**LIGHT_STEP, target_dose_mj_cm2=LONG_TARGET_MJ_CM2))
        self.light.set_target_dose(LONG_TARGET_MJ_CM2)

    def _light_sensor_low(self, *, timer_ok: bool) -> None:
        """The sensor reads half: the device's dose would reach the target at twice the time; the backup time
        (1.25 × the expected time) ends the exposure first, by the device, or by the host when the device's timer
        has failed."""
        self.emu_light.clear_faults_cause()  # cool the lamp: hundreds of exposures before heat it towards 42 °C
        self.emu_light.sensor_low(0.5)
        self.emu_light.backup_timer_failure(not timer_ok)
        self._light_long()

    def _light_sensor_fixed(self) -> None:
        self.emu_light.sensor_low(1.0)
        self.emu_light.backup_timer_failure(False)

    def _light_host_target(self) -> None:
        # The host stops at 2 + 1 (tolerance) mJ/cm²; the device would close only at 6: the host interlock must act.
        self.rig.monitor.set_limits(StepLimits(**LIGHT_STEP, target_dose_mj_cm2=2.0))
        self.light.set_target_dose(6.0)

    def _light_no_uv(self) -> None:
        self.rig.monitor.set_limits(StepLimits(area_id="BENCH-PIH", light_allowed=False))
        self.light.set_target_dose(5.0)

    def _estop_from_thread(self) -> str | None:
        th = threading.Thread(target=self.rig.monitor.estop, args=("bench",), name="bench-estop")
        th.start()
        th.join()
        return None

    def _pen_within_limit(self) -> None:
        self.rig.monitor.set_limits(StepLimits(**PEN_STEP, depth_limit_mm=0.5))
        self.pen.set_depth(0.5)
        self.pen.set_stroke_rate(100.0)
        # The depth stop follows its set point (τ 30 ms) even at rest: after a depth-limit trip at 1 mm it is still
        # over the limit for ~50 ms, and the monitor rightly trips on the measured depth. Start once it is back.
        deadline = time.monotonic() + 1.0
        while self.emu_pen.state().depth_mm > 0.52 and time.monotonic() < deadline:
            time.sleep(0.002)

    def _pen_too_deep(self) -> str | None:
        self.pen.set_depth(1.0)  # while needling: over the step's 0.5 mm limit
        return None

    # --- one trip -----------------------------------------------------------------------------------------------
    def _settle(self, device: str) -> None:
        """Wait until the emulator is safe and a block that arrived after that shows the device inactive."""
        emu = self.emu_light if device == "light" else self.emu_pen
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            st = emu.state()
            if not st.active:
                t_safe = st.last_stop_at or 0.0
                t_block, active = self.tap.last_block.get(device, (0.0, True))
                if t_block > t_safe and not active:
                    return
            time.sleep(0.002)
        raise BenchFailure(f"the {device} did not settle (still active or no telemetry) within 2 s")

    def _reset(self, device: str) -> None:
        for name in ("light", "pen"):  # an E-stop latches both
            self._settle(name)
        self.rig.monitor.reset("bench")
        for name, emu in (("light", self.emu_light), ("pen", self.emu_pen)):
            if emu.state().faults:
                self.rig.devices[name].reset_faults()

    def run_one(self, kind: Kind, stats: KindStats) -> bool:
        """One attempt; True if an interlock tripped (counted in stats), False if none came (to be retried)."""
        dev = self.light if kind.device == "light" else self.pen
        emu = self.emu_light if kind.device == "light" else self.emu_pen
        self._reset(kind.device)
        kind.prepare()
        self.tap.clear()
        dev.arm(True)
        t_start = now_s()
        dev.start()
        key = None
        if kind.wait_active:
            deadline = time.monotonic() + ACTIVE_TIMEOUT_S
            while True:
                st = emu.state()
                if (st.emitting if kind.device == "light" else st.running and st.stroke_rate_hz > 50.0):
                    break
                if time.monotonic() > deadline or self.tap.got_trip.is_set():
                    break
                time.sleep(POLL_S)
            if self.tap.got_trip.is_set():
                stats.notes.append("tripped before the cause was applied")
            key = kind.cause()
        if not self.tap.got_trip.wait(TRIP_TIMEOUT_S):
            stats.no_trip += 1
            dev.stop_now("bench: no trip")
            if kind.cleanup:
                kind.cleanup()
            return False
        t_cause_emu = emu.state().injected_at.get(key) if key else None
        ev = None
        deadline = time.monotonic() + 0.2
        while ev is None and time.monotonic() < deadline:
            ev = self.tap.first_trip(kind.device)
            if ev is None:
                time.sleep(POLL_S)
        if ev is None:  # an interlock on the other device only
            stats.no_trip += 1
            stats.notes.append("an interlock came for another device only")
            dev.stop_now("bench: wrong device")
            if kind.cleanup:
                kind.cleanup()
            return False
        d = ev.details
        if d["interlock"] != kind.expected:
            stats.other_interlock[d["interlock"]] = stats.other_interlock.get(d["interlock"], 0) + 1
        stats.host_ms.append(float(d["latency_ms"]))
        stats.detected_by_device += d.get("detected_by") == "device"
        stopped = d.get("stop") == "stop written"
        t_written = float(d["stop_written_t_host_s"])
        t_cause = t_cause_emu if t_cause_emu is not None else float(d["cause_t_host_s"])
        safe_at = None
        while now_s() < t_written + INACTIVE_WITHIN_S:
            st = emu.state()
            if not st.active and st.last_stop_at is not None and st.last_stop_at > t_start:
                safe_at = st.last_stop_at
                break
            time.sleep(POLL_S)
        if safe_at is None or safe_at > t_written + INACTIVE_WITHIN_S:
            stopped = False
        else:
            stats.device_ms.append((safe_at - t_cause) * 1000.0)
            if kind.expected == InterlockCause.TARGET_DOSE:  # what the host's latency costs in dose (was a unit test's bound)
                lim = self.rig.monitor.limits
                threshold = lim.target_dose_mj_cm2 + lim.dose_tolerance_mj_cm2
                stats.dose_past_threshold.append(emu.state().dose_mj_cm2 - threshold)
        if not stopped:
            stats.without_stop += 1
            stats.notes.append(f"no stop: stop={d.get('stop')!r}, safe_at={safe_at}, written={t_written:.4f}")
        if kind.cleanup:
            kind.cleanup()
        with self.tap._lock:
            stats.alarms += sum(1 for a in self.tap.alarms if a.details.get("device") == kind.device)
        return True


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def summarize(values: list[float]) -> dict:
    return {"median_ms": pct(values, 50), "p99_ms": pct(values, 99),
            "max_ms": round(max(values), 3) if values else None}


def run(args: argparse.Namespace) -> tuple[list[KindStats], float]:
    logging.basicConfig(level=logging.WARNING)
    rig = Rig.simulation(seed=args.seed, light_warmup_s=0.2)
    tap = Tap()
    rig.bus.subscribe(tap)  # after the monitor, which stays first
    t0 = time.monotonic()
    all_stats: list[KindStats] = []
    try:
        time.sleep(0.4)  # lamp warm-up (0.2 s to 99.5 %)
        bench = Bench(rig, tap)
        for kind in bench.kinds():
            if args.only and kind.name not in args.only:
                continue
            stats = KindStats(kind.name, kind.device, kind.expected)
            all_stats.append(stats)
            attempts = 0
            t_kind = time.monotonic()
            while len(stats.host_ms) < args.trips:
                attempts += 1
                if attempts > args.trips + max(10, args.trips // 10):
                    stats.notes.append(f"gave up after {attempts - 1} attempts")
                    break
                try:
                    bench.run_one(kind, stats)
                except DeviceError as exc:
                    stats.notes.append(f"device error: {exc}")
            print(f"  {kind.name}: {len(stats.host_ms)} trips in {time.monotonic() - t_kind:.1f} s", flush=True)
    finally:
        rig.close()
    return all_stats, time.monotonic() - t0


def report(args: argparse.Namespace, all_stats: list[KindStats], elapsed_s: float) -> dict:
    host = [v for s in all_stats for v in s.host_ms]
    shutter = [v for s in all_stats if s.device == "light" for v in s.device_ms]
    per_kind = {}
    print(f"Interlock benchmark: {args.trips} trips per kind requested, {len(host)} trips in {elapsed_s:.1f} s")
    print(f"{'kind':<19}{'interlock':<22}{'n':>5}  {'host ms: median':>15}{'p99':>8}{'max':>8}"
          f"  {'safe ms: median':>15}{'p99':>8}{'max':>8}  {'no stop':>7}{'alarms':>7}")
    for s in all_stats:
        h, dv = summarize(s.host_ms), summarize(s.device_ms)
        what = "shutter_latency" if s.device == "light" else "rotor_stop_latency"
        per_kind[s.name] = {
            "device": s.device, "interlock": s.expected, "trips": len(s.host_ms),
            "host_latency_median_ms": h["median_ms"], "host_latency_p99_ms": h["p99_ms"],
            "host_latency_max_ms": h["max_ms"],
            f"{what}_median_ms": dv["median_ms"], f"{what}_p99_ms": dv["p99_ms"], f"{what}_max_ms": dv["max_ms"],
            "trips_without_stop": s.without_stop, "other_interlock": s.other_interlock,
            "attempts_without_trip": s.no_trip, "still_active_alarms": s.alarms,
            "first_trip_from_device_fault_report": s.detected_by_device,
        }
        if s.dose_past_threshold:
            per_kind[s.name]["dose_past_threshold_median_mj_cm2"] = pct(s.dose_past_threshold, 50)
            per_kind[s.name]["dose_past_threshold_p99_mj_cm2"] = pct(s.dose_past_threshold, 99)
            per_kind[s.name]["dose_past_threshold_max_mj_cm2"] = round(max(s.dose_past_threshold), 3)

        def f(x: float | None) -> str:
            return "-" if x is None else f"{x:.3f}"

        print(f"{s.name:<19}{s.expected:<22}{len(s.host_ms):>5}  {f(h['median_ms']):>15}{f(h['p99_ms']):>8}"
              f"{f(h['max_ms']):>8}  {f(dv['median_ms']):>15}{f(dv['p99_ms']):>8}{f(dv['max_ms']):>8}"
              f"  {s.without_stop:>7}{s.alarms:>7}")
        if s.detected_by_device:
            print(f"    first trip from the device's FAULT report (not a block): {s.detected_by_device}")
        if s.dose_past_threshold:
            d = per_kind[s.name]
            print(f"    dose given past the host's threshold (target + tolerance), mJ/cm²: median "
                  f"{d['dose_past_threshold_median_mj_cm2']}, p99 {d['dose_past_threshold_p99_mj_cm2']}, max "
                  f"{d['dose_past_threshold_max_mj_cm2']}")
        if s.other_interlock:
            print(f"    first trip was another interlock: {s.other_interlock}")
        if s.no_trip:
            print(f"    attempts without a trip (retried): {s.no_trip}")
        for note in sorted(set(s.notes))[:5]:
            print(f"    note: {note} (x{s.notes.count(note)})")
    print("  safe ms: light = cause → shutter closed (irradiance zero); pen = cause → rotor below 1 Hz")
    result = {
        "trips": len(host),
        "host_latency_median_ms": pct(host, 50),
        "host_latency_p99_ms": pct(host, 99),
        "host_latency_max_ms": round(max(host), 3) if host else None,
        "shutter_latency_p99_ms": pct(shutter, 99),
        "trips_without_stop": sum(s.without_stop for s in all_stats),
        "per_kind": per_kind,
    }
    print(f"overall: host latency median {result['host_latency_median_ms']} ms, p99 {result['host_latency_p99_ms']} "
          f"ms, max {result['host_latency_max_ms']} ms; light cause → shutter closed p99 "
          f"{result['shutter_latency_p99_ms']} ms; trips without stop {result['trips_without_stop']}")
    for key, limit in TARGETS.items():
        v = result[key]
        ok = v is not None and v < limit
        print(f"  target {key} < {limit:g} ms: {'met' if ok else 'MISSED'} ({v} ms)")
    print(f"  target trips_without_stop == 0: {'met' if result['trips_without_stop'] == 0 else 'MISSED'}")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trips", type=int, default=200, help="trips per kind (default 200; fewer for a quick run)")
    ap.add_argument("--seed", type=int, default=1, help="emulator seed (default 1)")
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    ap.add_argument("--only", type=lambda v: [k.strip() for k in v.split(",") if k.strip()], default=[],
                    metavar="KIND,...", help="run only these kinds (e.g. backup_time,sensor_implausible)")
    args = ap.parse_args(argv)
    if args.trips < 1:
        print("--trips must be at least 1.", file=sys.stderr)
        return 2
    try:
        all_stats, elapsed = run(args)
    except BenchFailure as exc:
        print(f"interlock benchmark failed: {exc}", file=sys.stderr)
        return 1
    result = report(args, all_stats, elapsed)
    if args.json:
        print(json.dumps(result))
    complete = all(len(s.host_ms) >= args.trips for s in all_stats)
    return 0 if complete and result["trips_without_stop"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
