"""Telemetry benchmark: both emulated devices streaming at once over ptys, measured on the host side only.

    python bench/telemetry.py [--seconds 10] [--rate-hz 2000] [--samples-per-frame 20] [--baud N] [--json]

Each emulator runs in its own subprocess (`main.py emulate light|pen`), so this process holds only what a clinical
session holds: the session bus and the two real drivers (UVB308Light, MicroneedlingPen) with their reader and
heartbeat threads. After a warm-up the stream is measured for --seconds:

- frames/s: TELEMETRY frames decoded and published per device, per wall second of the window;
- sequence gaps: times a device's sequence number skipped during the window (both devices together);
- latency: per block, `now - block["t_host_s"][-1]` taken in a bus sink, i.e. from the return of the read that
  completed the frame to the decoded block reaching the bus's consumers (decode + dispatch), median and p99;
- CPU: user + system time of each driver's threads (reader + heartbeat, from /proc/self/task/<tid>/stat) per wall
  second of the window, as a fraction of one core; `cpu_core_fraction_per_driver` is the larger of the two.

Also printed (text only): the arrival lag of each frame behind the device's own sample schedule, relative to the
best frame of the run (emulator scheduling + the pty or the paced line + the reader's wake-up; not the decode).

With --json the last line is one JSON object with light_frames_per_s, pen_frames_per_s, sequence_gaps,
latency_median_ms, latency_p99_ms, cpu_core_fraction_per_driver.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drivers.base import DeviceError, SerialDevice  # noqa: E402
from drivers.light import UVB308Light  # noqa: E402
from drivers.pen import MicroneedlingPen  # noqa: E402
from workstation.bus import CommandRecord, Event, SessionBus, now_s  # noqa: E402

DEVICES = {"light": UVB308Light, "pen": MicroneedlingPen}
CLK_TCK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT_S = 15.0
WARMUP_S = 1.0
TARGETS = {"cpu_core_fraction_per_driver": 0.10, "latency_p99_ms": 2.0, "sequence_gaps": 0}


class BenchFailure(Exception):
    """The benchmark could not run; the message is a sentence for the user."""


class LatencySink:
    """Records, per device, the decode+dispatch latency of each block while `active` (runs in the reader threads)."""

    def __init__(self) -> None:
        self.active = False
        self.latency_s: dict[str, list[float]] = {d: [] for d in DEVICES}
        self.lag: dict[str, list[tuple[float, int]]] = {d: [] for d in DEVICES}  # (t_host_s, t_device_us) per block

    def on_block(self, device: str, block: np.ndarray) -> None:
        t = now_s()
        if self.active:
            last = block[-1]
            t_host = float(last["t_host_s"])
            self.latency_s[device].append(t - t_host)
            self.lag[device].append((t_host, int(last["t_device_us"])))

    def on_event(self, event: Event) -> None:
        pass

    def on_command(self, record: CommandRecord) -> None:
        pass


def start_emulator(kind: str, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, str(ROOT / "main.py"), "emulate", kind, "--rate-hz", str(args.rate_hz),
           "--samples-per-frame", str(args.samples_per_frame)]
    if args.baud:
        cmd += ["--baud", str(args.baud)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    line = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline().strip()
            break
        if proc.poll() is not None:
            break
    if not line:
        if proc.poll() is None:
            proc.kill()
        _, err_text = proc.communicate(timeout=5)
        err = (err_text or "").strip().splitlines()
        why = err[-1].removeprefix("error: ") if err else f"no port printed within {START_TIMEOUT_S:g} s"
        raise BenchFailure(f"The {kind} emulator did not start ({' '.join(cmd[1:])}): {why}")
    return proc, line


def stop_emulator(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    for f in (proc.stdout, proc.stderr):
        if f is not None and proc.returncode is not None:
            f.close()


def stat_cpu_s(paths: list[str]) -> float:
    """utime + stime summed over these /proc stat files, in seconds (clock-tick resolution)."""
    ticks = 0
    for path in paths:
        try:
            with open(path) as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:  # the thread or process ended: its time is no longer attributable
            continue
        ticks += int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5), counted after "pid (comm)"
    return ticks / CLK_TCK


def thread_cpu_s(threads: list[threading.Thread]) -> float:
    """CPU time of these threads of this process, in seconds."""
    return stat_cpu_s([f"/proc/self/task/{t.native_id}/stat" for t in threads])


def run(args: argparse.Namespace) -> dict:
    procs: list[subprocess.Popen] = []
    drivers: dict[str, SerialDevice] = {}
    bus = SessionBus()
    sink = LatencySink()
    bus.subscribe(sink)
    try:
        ports = {}
        for kind in DEVICES:
            proc, ports[kind] = start_emulator(kind, args)
            procs.append(proc)
        for kind, cls in DEVICES.items():
            drv = cls(ports[kind], bus=bus, **({"baudrate": args.baud} if args.baud else {}))
            try:
                drv.connect()
            except DeviceError as exc:
                raise BenchFailure(f"The {kind} driver could not connect to its emulator on {ports[kind]}: {exc}") from exc
            drivers[kind] = drv
        time.sleep(WARMUP_S)

        before = {k: (thread_cpu_s(d._threads), d.counters.seq_gaps, d.counters.lost_frames, d.counters.bad_frames)
                  for k, d in drivers.items()}
        emu_stats = [f"/proc/{proc.pid}/stat" for proc in procs]
        emu_cpu0 = stat_cpu_s(emu_stats)
        proc_cpu0 = time.process_time()
        t0 = time.monotonic()
        sink.active = True
        time.sleep(args.seconds)
        sink.active = False
        wall = time.monotonic() - t0
        proc_cpu = (time.process_time() - proc_cpu0) / wall
        emu_cpu = (stat_cpu_s(emu_stats) - emu_cpu0) / wall
        after = {k: (thread_cpu_s(d._threads), d.counters.seq_gaps, d.counters.lost_frames, d.counters.bad_frames)
                 for k, d in drivers.items()}
        connect_gaps = {k: before[k][1] for k in drivers}
        alive = {k: all(t.is_alive() for t in d._threads) for k, d in drivers.items()}
    finally:
        for d in drivers.values():
            d.close()
        for proc in procs:
            stop_emulator(proc)

    per = {}
    for k in DEVICES:
        lag = np.array(sink.lag[k], dtype=float).reshape(-1, 2)
        arrival = lag[:, 0] - lag[:, 1] * 1e-6
        arrival = (arrival - arrival.min()) * 1e3 if len(arrival) else arrival
        per[k] = {
            "frames_per_s": len(sink.latency_s[k]) / wall,
            "cpu": (after[k][0] - before[k][0]) / wall,
            "gaps": after[k][1] - before[k][1],
            "lost": after[k][2] - before[k][2],
            "bad": after[k][3] - before[k][3],
            "connect_gaps": connect_gaps[k],
            "threads_alive": alive[k],
            "lat_ms": np.array(sink.latency_s[k]) * 1e3,
            "arrival_ms": arrival,
        }
    lat = np.concatenate([per[k]["lat_ms"] for k in DEVICES])
    if not len(lat):
        raise BenchFailure("No telemetry block reached the bus during the window: the drivers decoded nothing.")
    return {"wall_s": wall, "process_cpu": proc_cpu, "emulators_cpu": emu_cpu, "per": per, "lat_ms": lat, "sink_errors": bus.sink_errors}


def report(args: argparse.Namespace, r: dict) -> dict:
    per, lat = r["per"], r["lat_ms"]
    expected = args.rate_hz / args.samples_per_frame
    link = f"paced at {args.baud} baud" if args.baud else "pty, unthrottled"
    print(f"Telemetry bench: light + pen at {args.rate_hz:g} Hz, {args.samples_per_frame} samples/frame "
          f"(expect {expected:g} frames/s each), {link}; window {r['wall_s']:.2f} s after {WARMUP_S:g} s warm-up")
    for k in DEVICES:
        d = per[k]
        pct = np.percentile(d["lat_ms"], [50, 99]) if len(d["lat_ms"]) else [float("nan")] * 2
        arr = np.percentile(d["arrival_ms"], [50, 99, 100]) if len(d["arrival_ms"]) else [float("nan")] * 3
        print(f"  {k:5s}: {d['frames_per_s']:7.1f} frames/s  gaps {d['gaps']} (lost frames {d['lost']}, "
              f"bad frames {d['bad']})  latency median {pct[0]:.3f} ms p99 {pct[1]:.3f} ms  "
              f"driver CPU {d['cpu'] * 100:.1f} % of a core")
        print(f"         arrival lag behind the device schedule (vs best frame): median {arr[0]:.2f} ms "
              f"p99 {arr[1]:.2f} ms max {arr[2]:.2f} ms")
        if d["connect_gaps"]:
            print(f"         note: {d['connect_gaps']} sequence gap(s) before the window (connect, warm-up)")
        if not d["threads_alive"]:
            print(f"         WARNING: a {k} driver thread ended during the run")
    p50, p99 = np.percentile(lat, [50, 99])
    cpu = max(per[k]["cpu"] for k in DEVICES)
    gaps = sum(per[k]["gaps"] for k in DEVICES)
    print(f"  both : latency median {p50:.3f} ms p99 {p99:.3f} ms over {len(lat)} blocks, max {lat.max():.3f} ms; "
          f"whole host process CPU {r['process_cpu'] * 100:.1f} % of a core; sink errors {r['sink_errors']}")
    print(f"  (the two emulator processes, not counted above: {r['emulators_cpu'] * 100:.1f} % of a core together)")
    fps_ok = all(per[k]["frames_per_s"] >= 0.98 * expected for k in DEVICES)
    checks = [("both devices at full rate", fps_ok), ("zero sequence gaps", gaps == 0),
              (f"p99 latency < {TARGETS['latency_p99_ms']:g} ms", p99 < TARGETS["latency_p99_ms"]),
              (f"CPU < {TARGETS['cpu_core_fraction_per_driver'] * 100:g} % of a core per driver",
               cpu < TARGETS["cpu_core_fraction_per_driver"])]
    print("  targets: " + "; ".join(f"{name}: {'PASS' if ok else 'FAIL'}" for name, ok in checks))
    return {
        "light_frames_per_s": round(per["light"]["frames_per_s"], 2),
        "pen_frames_per_s": round(per["pen"]["frames_per_s"], 2),
        "sequence_gaps": int(gaps),
        "latency_median_ms": round(float(p50), 4),
        "latency_p99_ms": round(float(p99), 4),
        "cpu_core_fraction_per_driver": round(float(cpu), 4),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the measured stream (default 10)")
    ap.add_argument("--rate-hz", type=float, default=2000.0, help="telemetry sample rate per device (default 2000)")
    ap.add_argument("--samples-per-frame", type=int, default=20, help="samples per TELEMETRY frame (default 20)")
    ap.add_argument("--baud", type=int, default=None,
                    help="pace the emulators' output at this baud rate (default: unthrottled pty)")
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = ap.parse_args(argv)
    if args.seconds <= 0:
        ap.error("--seconds must be positive")
    try:
        result = run(args)
    except BenchFailure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    figures = report(args, result)
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
