"""GUI benchmark: live-plot frames/s and GUI-thread CPU with both devices at 2 kHz over a 10-minute window, and the
time from process start to the first painted window.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui.py [--seconds 5] [--json]

The plots are those of the workstation window's treatment page, fed on the window's own bus by the synthetic source
(the same blocks a driver publishes, from a thread, 20 samples every 10 ms per device) after a 10-minute prefill, so
the figure is about drawing, not about the emulators. Start-up is
measured on `main.py run --simulate --exit-after-first-show` in a fresh process (real emulators and drivers).
Device→pixel latency is what a clinician feels: for every block, from its arrival on the host (the bus delivering
it) to the end of the first paint of its device's plots that includes it (`DevicePlotPanel.on_painted`), both devices
at 2 kHz while an HDF5 recorder records the same bus; median and p99 over all blocks. The 1-hour window run draws a
window of 3600 s (buffers prefilled with an hour of both devices) while the feed goes on.
With --json the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no screen: Qt still paints, offscreen

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure_plots(seconds: float, window_label: str, prefill_s: float) -> dict:
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from workstation.synthetic_source import SyntheticSource
    from workstation.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    tmp = tempfile.TemporaryDirectory(prefix="cicatrix-bench-")
    main_window = MainWindow(recordings_dir=Path(tmp.name))
    buffers = main_window.controller.buffers
    source = SyntheticSource(main_window.controller.bus)
    t0 = time.perf_counter()
    source.prefill(prefill_s)
    prefill_wall_s = time.perf_counter() - t0
    window = main_window.treatment  # what `window.plots` means below: the treatment page's live plots
    main_window.show_page(window)
    window.plots.set_window(window_label)
    main_window.show()
    window.plots.start()
    source.start()
    result: dict[str, float] = {}
    warmup_s = 1.0

    def begin() -> None:
        result["paints0"] = sum(p.paints for p in window.plots.panels.values())
        result["frames0"] = window.plots.frames_drawn
        result["cpu0"] = time.thread_time()
        result["wall0"] = time.perf_counter()
        QTimer.singleShot(int(seconds * 1000), end)

    def end() -> None:
        wall_s = time.perf_counter() - result["wall0"]
        result["gui_thread_cpu_core_fraction"] = (time.thread_time() - result["cpu0"]) / wall_s
        panels = len(window.plots.panels)
        paints = sum(p.paints for p in window.plots.panels.values()) - result["paints0"]
        result["refresh_per_s"] = (window.plots.frames_drawn - result["frames0"]) / wall_s
        # a frame counts when new data was both pulled and painted
        result["plot_fps"] = min(paints / panels / wall_s, result["refresh_per_s"])
        result["last_refresh_ms"] = window.plots.last_frame_ms
        t_last = buffers.stats("pen").t_last_s
        result["held_span_s"] = t_last - buffers.stats("pen").t_first_s
        result["points_per_curve"] = float(len(buffers.view("pen", "depth_mm", window.plots.window_s, None)[0]))
        main_window.close()

    QTimer.singleShot(int(warmup_s * 1000), begin)
    app.exec()
    source.stop()
    tmp.cleanup()
    result["prefill_wall_s"] = prefill_wall_s
    figures = {k: v for k, v in result.items() if not k.endswith("0")}
    figures["platform"] = app.platformName()
    return figures


class _Arrivals:
    """A bus sink noting, per device, (samples so far, host time) at each block's arrival."""

    def __init__(self) -> None:
        self.log: dict[str, list[tuple[int, float]]] = {"light": [], "pen": []}
        self.totals = {"light": 0, "pen": 0}

    def on_block(self, device: str, block: object) -> None:
        from workstation.bus import now_s

        self.totals[device] += len(block)  # type: ignore[arg-type]
        self.log[device].append((self.totals[device], now_s()))

    def on_event(self, event: object) -> None:
        return None

    def on_command(self, record: object) -> None:
        return None


def _recorder(directory: Path, bus: object) -> object:
    """An HDF5 recorder on the bus, as in a session (so the figures are taken while recording)."""
    import uuid

    from drivers.channels import LIGHT_CHANNELS, PEN_CHANNELS
    from drivers.protocol import LIGHT_BLOCK, PEN_BLOCK
    from drivers.types import DriverInfo, Identity
    from workstation.recording import SessionMeta, SessionRecorder

    meta = SessionMeta(str(uuid.uuid4()), "simulation", "BENCH-0001", "bench", "bench", "1", "bench")
    rec = SessionRecorder.create(directory, meta, min_free_bytes=0)
    rec.add_device("light", DriverInfo("light-synthetic", "light", "1", "synthetic", 2000.0, LIGHT_CHANNELS, ()),
                   Identity("SYN-L", "0", "1", 1, {}), LIGHT_BLOCK, {})
    rec.add_device("pen", DriverInfo("pen-synthetic", "needling", "1", "synthetic", 2000.0, PEN_CHANNELS, ()),
                   Identity("SYN-P", "0", "1", 1, {}), PEN_BLOCK, {})
    rec.start()
    bus.subscribe(rec)  # type: ignore[attr-defined]
    return rec


def measure_latency(seconds: float) -> dict:
    """Device→pixel latency (ms) on the treatment page's plots, 10-s window, both devices at 2 kHz, recording."""
    import numpy as np
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from workstation.bus import now_s
    from workstation.synthetic_source import SyntheticSource
    from workstation.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    tmp = tempfile.TemporaryDirectory(prefix="cicatrix-bench-")
    win = MainWindow(recordings_dir=Path(tmp.name))
    bus = win.controller.bus
    recorder = _recorder(Path(tmp.name), bus)
    arrivals = _Arrivals()
    bus.subscribe(arrivals)
    plots = win.treatment.plots
    win.show_page(win.treatment)
    plots.set_window("10 s")
    win.show()
    latencies_ms: list[float] = []
    next_block = {"light": 0, "pen": 0}
    measuring = {"on": False}

    def painted(panel: object) -> None:
        t = now_s()
        dev = panel.device  # type: ignore[attr-defined]
        log, k = arrivals.log[dev], next_block[dev]
        while k < len(log) and log[k][0] <= panel.drawn_total:  # type: ignore[attr-defined]
            if measuring["on"]:
                latencies_ms.append((t - log[k][1]) * 1e3)
            k += 1
        next_block[dev] = k

    for panel in plots.panels.values():
        panel.on_painted = painted
    source = SyntheticSource(bus)
    plots.start()
    source.start()
    QTimer.singleShot(1000, lambda: measuring.update(on=True))
    QTimer.singleShot(int((1.0 + seconds) * 1000), app.quit)
    app.exec()
    measuring["on"] = False
    source.stop()
    recorder.close()  # type: ignore[attr-defined]
    win.close()
    tmp.cleanup()
    lat = np.array(latencies_ms)
    return {"pixel_latency_p50_ms": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
            "pixel_latency_p99_ms": float(np.percentile(lat, 99)) if len(lat) else float("nan"),
            "latency_blocks": int(len(lat))}


def measure_1h(seconds: float) -> dict:
    """Plot frames/s with a 1-hour window (an hour of both devices at 2 kHz held and shown) while the feed goes on."""
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from workstation.bus import SessionBus
    from workstation.plotbuffer import PlotBuffers
    from workstation.synthetic_source import SyntheticSource
    from workstation.ui.plots import LivePlots, plotted_channels

    app = QApplication.instance() or QApplication([])
    bus = SessionBus()
    buffers = PlotBuffers(plotted_channels(), capacity_s=3600, rate_hz=2000)
    bus.subscribe(buffers)
    source = SyntheticSource(bus)
    t0 = time.perf_counter()
    source.prefill(3600.0)
    prefill_s = time.perf_counter() - t0
    plots = LivePlots(buffers)
    plots.resize(1400, 700)
    plots.set_window("1 h")
    plots.show()
    plots.start()
    source.start()
    result: dict[str, float] = {}

    def begin() -> None:
        result["paints0"] = sum(p.paints for p in plots.panels.values())
        result["frames0"], result["wall0"] = plots.frames_drawn, time.perf_counter()
        QTimer.singleShot(int(seconds * 1000), end)

    def end() -> None:
        wall = time.perf_counter() - result["wall0"]
        paints = sum(p.paints for p in plots.panels.values()) - result["paints0"]
        refresh = (plots.frames_drawn - result["frames0"]) / wall
        result["plot_fps_1h"] = min(paints / len(plots.panels) / wall, refresh)
        result["span_shown_s"] = buffers.stats("pen").t_last_s - buffers.stats("pen").t_first_s
        result["last_refresh_ms_1h"] = plots.last_frame_ms
        app.quit()

    QTimer.singleShot(1000, begin)
    app.exec()
    source.stop()
    plots.stop()
    plots.close()
    result["prefill_1h_wall_s"] = prefill_s
    return {k: v for k, v in result.items() if not k.endswith("0")}


def measure_recording(seconds: float) -> float:
    """Plot refreshes per second on the treatment page during a real simulated session that is being recorded
    (emulators, drivers, safety monitor and HDF5 recorder all running in the same process)."""
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from workstation.protocols.library import seeds_dir
    from workstation.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    tmp = tempfile.TemporaryDirectory(prefix="cicatrix-bench-")
    window = MainWindow(recordings_dir=Path(tmp.name) / "recordings", store_path=Path(tmp.name) / "t.sqlite3")
    window.show()
    plots = window.treatment.plots
    result: dict[str, float] = {}

    def poll() -> None:
        if "t0" not in result and window.pages.currentWidget() is window.plan_view:
            window.start_treatment()
            result["t0"] = 0.0
        elif result.get("t0") == 0.0 and window.controller.rig and window.controller.rig.recorder is not None \
                and window.pages.currentWidget() is window.treatment:
            window.treatment.start_next_step()
            result["t0"], result["frames0"] = time.perf_counter(), plots.frames_drawn
            QTimer.singleShot(int(seconds * 1000), end)

    def end() -> None:
        result["fps"] = (plots.frames_drawn - result["frames0"]) / (time.perf_counter() - result["t0"])
        timer.stop()
        window.treatment.press_stop()
        window.close()
        app.quit()

    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(20)
    window.choose_simulation(seeds_dir() / "scenarios" / "combined-uneventful.toml")
    app.exec()
    tmp.cleanup()
    return result.get("fps", 0.0)


def measure_start(runs: int) -> list[float]:
    """Wall seconds from launching `main.py run --simulate` to its first painted window."""
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    times = []
    for _ in range(runs):
        t_launch = time.monotonic()
        proc = subprocess.run(
            [sys.executable, str(ROOT / "main.py"), "run", "--simulate", "--exit-after-first-show"],
            capture_output=True, text=True, env=env, timeout=60, cwd=ROOT,
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            raise SystemExit(f"main.py run failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
        times.append(json.loads(lines[-1])["first_show_monotonic_s"] - t_launch)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measurement time of the plot figures")
    parser.add_argument("--window", default="10 min", choices=["10 s", "1 min", "10 min"])
    parser.add_argument("--prefill-s", type=float, default=600.0, help="history written before measuring")
    parser.add_argument("--start-runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)

    plots = measure_plots(args.seconds, args.window, args.prefill_s)
    latency = measure_latency(args.seconds)
    hour = measure_1h(args.seconds)
    recording_fps = measure_recording(min(args.seconds, 3.0))
    starts = sorted(measure_start(args.start_runs))
    start_s = starts[len(starts) // 2]
    print(f"Qt platform              {plots['platform']}")
    print(f"window                   {args.window}, {plots['points_per_curve']:.0f} samples per curve shown")
    print(f"prefill                  {args.prefill_s:.0f} s x 2 devices at 2 kHz in {plots['prefill_wall_s']:.2f} s")
    print(f"plot frames/s            {plots['plot_fps']:.1f} (target >= 30)")
    print(f"refreshes/s              {plots['refresh_per_s']:.1f}, last refresh {plots['last_refresh_ms']:.1f} ms")
    print(f"while recording          {recording_fps:.1f} plot frames/s (simulated session, emulators + recorder)")
    print(f"device→pixel latency     p50 {latency['pixel_latency_p50_ms']:.1f} ms, p99 "
          f"{latency['pixel_latency_p99_ms']:.1f} ms over {latency['latency_blocks']} blocks (goal p99 < 50 ms; "
          "both devices at 2 kHz, recording)")
    print(f"1-hour window            {hour['plot_fps_1h']:.1f} plot frames/s (goal >= 30), {hour['span_shown_s']:.0f} s "
          f"held, last refresh {hour['last_refresh_ms_1h']:.1f} ms, prefill {hour['prefill_1h_wall_s']:.1f} s")
    print(f"GUI thread CPU           {plots['gui_thread_cpu_core_fraction'] * 100:.0f} % of a core")
    print(f"start to first window    {start_s:.2f} s (median of {len(starts)}: {', '.join(f'{s:.2f}' for s in starts)})")
    if args.json:
        print(json.dumps({
            "plot_fps": round(plots["plot_fps"], 2),
            "gui_thread_cpu_core_fraction": round(plots["gui_thread_cpu_core_fraction"], 3),
            "start_to_window_s": round(start_s, 3),
            "plot_fps_while_recording": round(recording_fps, 2),
            "pixel_latency_p50_ms": round(latency["pixel_latency_p50_ms"], 2),
            "pixel_latency_p99_ms": round(latency["pixel_latency_p99_ms"], 2),
            "plot_fps_1h": round(hour["plot_fps_1h"], 2),
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
