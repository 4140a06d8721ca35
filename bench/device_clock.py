"""Device-clock benchmark: how closely the host sees a device crystal's error through the real driver.

    python bench/device_clock.py [--seconds 2] [--clock-ppm 20000] [--json]

The light emulator runs with a crystal `--clock-ppm` fast; the real driver (UVB308Light) reads its telemetry over a
pty, and the device's clock (`t_device_us` of each frame's first sample) is fitted against the host's arrival time
(`t_host_s`). The slope is device seconds per host second: 1 + ppm·1e-6 when nothing delays the frames. On a loaded
machine the arrivals jitter and the slope with them: that is why this figure is a benchmark, not a unit test (the
unit test checks the emulator's own clock, which load cannot change).

With --json the last line is one JSON object with expected_ratio, measured_ratio, error_ppm, frames.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drivers.emulators import LightEmulator  # noqa: E402
from drivers.light import UVB308Light  # noqa: E402
from workstation.bus import BaseSink, SessionBus  # noqa: E402


class _Frames(BaseSink):
    def __init__(self) -> None:
        self.firsts: list[tuple[float, int]] = []

    def on_block(self, device: str, block: np.ndarray) -> None:
        self.firsts.append((float(block["t_host_s"][0]), int(block["t_device_us"][0])))


def measure(seconds: float, clock_ppm: float) -> dict:
    bus = SessionBus()
    frames = _Frames()
    bus.subscribe(frames)
    with LightEmulator(clock_ppm=clock_ppm) as emu:
        dev = UVB308Light(emu.port, bus=bus)
        try:
            dev.connect()
            time.sleep(seconds)
        finally:
            dev.close()
    t_host, t_dev_us = np.array(frames.firsts, dtype=np.float64).T
    ratio = float(np.polyfit(t_host, t_dev_us * 1e-6, 1)[0])
    expected = 1.0 + clock_ppm * 1e-6
    return {"expected_ratio": expected, "measured_ratio": round(ratio, 6),
            "error_ppm": round((ratio / expected - 1.0) * 1e6, 1), "frames": len(t_host)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="length of the measured stream (default 2)")
    ap.add_argument("--clock-ppm", type=float, default=20_000.0, help="the emulated crystal's error (default 2 %%)")
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = ap.parse_args(argv)
    if not args.seconds > 0:
        ap.error("--seconds must be positive")
    r = measure(args.seconds, args.clock_ppm)
    print(f"device clock {args.clock_ppm:g} ppm fast: host sees {r['measured_ratio']:.6f} device s per host s "
          f"(expected {r['expected_ratio']:.6f}, error {r['error_ppm']:+.1f} ppm over {r['frames']} frames)")
    if args.json:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
