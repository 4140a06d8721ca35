"""Watchdog benchmark: how soon the silence watchdogs act, and that a workstation held up is not a silent device.

    python bench/watchdog.py [--trials 20] [--seed 1] [--json]

One `Rig.simulation` (emulators on ptys, the real drivers, the safety monitor subscribed first), the light exposing
a long target each trial. Three measurements (drivers/silence.py, docs/safety.md "A workstation held up"):

- `device_watchdog`: the host stops sending heartbeats mid-exposure (its driver's `heartbeat_due` made false); from
  the device's last heartbeat to its shutter closed (`state().shutter_closed_at − last_heartbeat_at`): the device's
  own rule is 250 ms (+ shutter), judged on the silence its receiver saw.
- `telemetry_lost`: the device stalls mid-exposure (`stall`: no telemetry, still emitting); from the host's last block
  to the monitor's `telemetry_lost` trip (`cause_t_host_s`): the rule is 250 ms seen (+ up to one 10 ms watchdog tick).
- `held_up`: the whole process is held (a C call that keeps the GIL: every thread stops, as in a long garbage
  collection) for 0.2, 0.4, 0.6, 0.8 and 1.3 s mid-exposure. A hold-up that leaves one watchdog limit (250 ms) before
  the wall-clock bound (4 × 250 ms) for everything to catch up, i.e. shorter than 0.75 s, may trip nothing
  (`false_trips`); past the bound the devices must stop (`missed_stops`); in between (0.8 s) the outcome is reported,
  not judged: what came before the hold and the catch-up after it decide on which side of 1 s the silence ends.

With --json the last line is one JSON object: trials, device_watchdog_ms and telemetry_lost_ms ({median_ms, p99_ms,
max_ms}),
held_up ({seconds: {trials, trips}}), false_trips, missed_stops. Targets: false_trips 0, missed_stops 0,
device_watchdog p99 < 300 ms, telemetry_lost p99 < 300 ms.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from interlock import LIGHT_STEP, BenchFailure, Tap, summarize  # noqa: E402

from drivers.codes import InterlockCause  # noqa: E402
from drivers.silence import BLIND_LIMIT_FACTOR  # noqa: E402
from workstation.bus import now_s  # noqa: E402
from workstation.session.rig import Rig  # noqa: E402
from workstation.session.safety import StepLimits  # noqa: E402

TARGET_MJ_CM2 = 250.0  # ≈ 2.6 s at ≈ 96 mW/cm²: every trial ends by the watchdog or by the bench, never by the dose
HOLDS_S = (0.2, 0.4, 0.6, 0.8, 1.3)
LIMIT_S = 0.25
TARGETS = {"device_watchdog_p99_ms": 300.0, "telemetry_lost_p99_ms": 300.0, "false_trips": 0, "missed_stops": 0}
LIBC = ctypes.PyDLL(None)  # the call keeps the GIL


def wait(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise BenchFailure(f"timed out waiting for {what}")
        time.sleep(0.002)


class WatchdogBench:
    def __init__(self, rig: Rig, tap: Tap) -> None:
        self.rig, self.tap = rig, tap
        self.light, self.emu = rig.devices["light"], rig.emulators["light"]
        self.verbose = False

    def _ready(self) -> None:
        """Safe, reset, and quiet for 0.3 s with telemetry and heartbeats flowing: the next trial starts clean (a
        trial's device may still latch its own WATCHDOG a moment after the host's trip)."""
        for _ in range(10):
            wait(lambda: not self.emu.state().active, 3, "the light to be safe")
            t = now_s()
            wait(lambda t=t: self.tap.last_block.get("light", (0.0, True))[0] > t, 3, "fresh telemetry")
            wait(lambda t=t: (self.emu.state().last_heartbeat_at or 0.0) > t, 3, "heartbeats again")
            time.sleep(0.3)
            if self.emu.state().faults:
                self.light.reset_faults()
            self.rig.monitor.reset("bench")
            self.tap.clear()
            time.sleep(0.05)
            if not self.emu.state().faults and not self.rig.monitor.tripped:
                return
        raise BenchFailure("the light did not come back to a clean state")

    def _expose(self) -> None:
        self._ready()
        self.rig.monitor.set_limits(StepLimits(**LIGHT_STEP, target_dose_mj_cm2=TARGET_MJ_CM2))
        self.light.set_target_dose(TARGET_MJ_CM2)
        self.light.arm(True)
        self.light.start()
        wait(lambda: self.emu.state().emitting, 2, "the exposure")
        time.sleep(0.1)

    def device_watchdog(self) -> float:
        self._expose()
        due = self.light.heartbeat_due
        self.light.heartbeat_due = lambda: False  # the host goes silent; everything else runs on
        try:
            wait(lambda: not self.emu.state().active, 3, "the device's watchdog")
        finally:
            self.light.heartbeat_due = due
        st = self.emu.state()
        return (st.shutter_closed_at - st.last_heartbeat_at) * 1000.0

    def telemetry_lost(self) -> float:
        self._expose()
        self.emu.stall(True)
        try:
            self.tap.got_trip.wait(3)
            ev = self.tap.first_trip("light")
            if ev is None or ev.details["interlock"] != InterlockCause.TELEMETRY_LOST:
                raise BenchFailure(f"expected telemetry_lost, got {ev.details['interlock'] if ev else 'no trip'}")
            last = self.tap.last_block["light"][0]
            return (float(ev.details["cause_t_host_s"]) - last) * 1000.0
        finally:
            self.emu.stall(False)

    def held_up(self, seconds: float) -> bool:
        """Hold the process `seconds` mid-exposure; True if an interlock tripped (or the device stopped itself)."""
        self._expose()
        LIBC.usleep(int(seconds * 1e6))
        time.sleep(0.4)  # let everything catch up and judge
        tripped = bool(self.rig.monitor.tripped) or bool(self.emu.state().faults)
        if tripped and seconds < 1 and self.verbose:
            print("   ", [(t.interlock, t.message) for t in self.rig.monitor.tripped.values()], self.emu.state().faults)
        self.light.stop_now("bench: trial over")
        return tripped


def run(args: argparse.Namespace) -> dict:
    logging.basicConfig(level=logging.WARNING)
    rig = Rig.simulation(seed=args.seed, light_warmup_s=0.2)
    tap = Tap()
    rig.bus.subscribe(tap)
    t0 = time.monotonic()
    try:
        time.sleep(0.4)
        bench = WatchdogBench(rig, tap)
        bench.verbose = args.verbose
        dw = [bench.device_watchdog() for _ in range(args.trials)]
        print(f"  device watchdog: {len(dw)} trials", flush=True)
        tl = [bench.telemetry_lost() for _ in range(args.trials)]
        print(f"  telemetry lost: {len(tl)} trials", flush=True)
        held: dict[str, dict[str, int]] = {}
        for s in HOLDS_S:
            trips = sum(bench.held_up(s) for _ in range(args.trials))
            held[f"{s:g}"] = {"trials": args.trials, "trips": trips}
            print(f"  held up {s:g} s: {trips} of {args.trials} tripped", flush=True)
    finally:
        rig.close()
    bound = BLIND_LIMIT_FACTOR * LIMIT_S
    return {
        "trials": args.trials,
        "device_watchdog_ms": summarize(dw),
        "telemetry_lost_ms": summarize(tl),
        "held_up": held,
        "false_trips": sum(v["trips"] for k, v in held.items() if float(k) < bound - LIMIT_S),
        "missed_stops": sum(v["trials"] - v["trips"] for k, v in held.items() if float(k) > bound),
        "elapsed_s": round(time.monotonic() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="print each unexpected trip")
    args = ap.parse_args(argv)
    try:
        out = run(args)
    except BenchFailure as exc:
        print(f"bench/watchdog.py: {exc}", file=sys.stderr)
        return 1
    dw, tl = out["device_watchdog_ms"], out["telemetry_lost_ms"]
    print(f"device watchdog, last heartbeat → shutter closed: median {dw['median_ms']:.1f} ms, p99 "
          f"{dw['p99_ms']:.1f} ms, max {dw['max_ms']:.1f} ms (target p99 < {TARGETS['device_watchdog_p99_ms']:g})")
    print(f"telemetry lost, last block → trip: median {tl['median_ms']:.1f} ms, p99 {tl['p99_ms']:.1f} ms, "
          f"max {tl['max_ms']:.1f} ms (target p99 < {TARGETS['telemetry_lost_p99_ms']:g})")
    print(f"held up below {BLIND_LIMIT_FACTOR * LIMIT_S - LIMIT_S:g} s: {out['false_trips']} false trips; past "
          f"{BLIND_LIMIT_FACTOR * LIMIT_S:g} s: {out['missed_stops']} missed stops (targets 0 and 0)")
    ok = (dw["p99_ms"] < TARGETS["device_watchdog_p99_ms"] and tl["p99_ms"] < TARGETS["telemetry_lost_p99_ms"]
          and out["false_trips"] == 0 and out["missed_stops"] == 0)
    out["pass"] = ok
    if args.json:
        print(json.dumps(out))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
