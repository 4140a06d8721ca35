"""Recording benchmark: sustained writing, opening an hour, reading windows, replay at 100x.

    python bench/recording.py [--seconds 60] [--hours 1] [--json]

With --json the last line is one JSON object: write_rows_per_s (capacity: rows written per wall second when blocks
arrive as fast as the writer takes them), writer_cpu_core_fraction (writer thread CPU s per s of stream at 2 x 2 kHz
in real time), max_queue_depth (largest number of items waiting in the recorder's inbox in that run), open_1h_s,
window_read_median_ms and window_read_p99_ms (a 10-s window of both devices), replay_100x_lag_s (how late, in
wall-clock seconds, replay at 100x published a sample after it was due, at worst; its 10-ms tick is included, and
a replay that cannot keep up shows a lag that grows with the run), append_interval_max_s (the longest time between
the starts of two appends in the real-time run; the format promises at most 0.25 s), fsync_mean_ms, fsync_max_ms and
fsyncs (the fsyncs asked after each flush of that run and run on their own thread, recording/syncer.py: a slow one
covers the flushes asked while it ran, so there may be fewer than flushes), room_hold_mean_ms
and room_hold_max_ms (holding the close's room past the file's end at each flush: recording/room.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drivers.channels import LIGHT_CHANNELS, PEN_CHANNELS  # noqa: E402
from drivers.protocol import LIGHT_BLOCK, PEN_BLOCK  # noqa: E402
from drivers.types import DriverInfo, Identity  # noqa: E402
from workstation.bus import SessionBus  # noqa: E402
from workstation.recording.reader import Recording  # noqa: E402
from workstation.recording.replay import ReplaySource  # noqa: E402
from workstation.recording.writer import SessionMeta, SessionRecorder  # noqa: E402

RATE_HZ, FRAME = 2000, 20
DTYPES = {"light": LIGHT_BLOCK, "pen": PEN_BLOCK}
INFOS = {"light": DriverInfo("light-uvb308", "light", "1.0.0", "bench", RATE_HZ, LIGHT_CHANNELS, ()),
         "pen": DriverInfo("pen-mn", "needling", "1.0.0", "bench", RATE_HZ, PEN_CHANNELS, ())}


def rows(device: str, i0: int, n: int, t0: float) -> np.ndarray:
    i = np.arange(i0, i0 + n, dtype=np.int64)
    b = np.zeros(n, DTYPES[device])
    b["t_host_s"] = t0 + (i // FRAME + 1) * (FRAME / RATE_HZ)
    b["t_device_us"] = i * 500
    b["seq"] = (i // FRAME) % 65536
    rng = np.random.default_rng(i0)
    for name in DTYPES[device].names[3:]:
        if DTYPES[device][name].kind == "f":
            b[name] = rng.normal(10.0, 1.0, n)
    return b


def recorder(directory: Path, t0: float, **kw) -> SessionRecorder:
    meta = SessionMeta(str(uuid.uuid4()), "simulation", "BENCH-1", "bench", "bench", "1", "bench")
    rec = SessionRecorder.create(directory, meta, min_free_bytes=0, t0_host_s=t0, **kw)
    for d in DTYPES:
        rec.add_device(d, INFOS[d], Identity("bench", "0", "0", 1), DTYPES[d], {})
    rec.start()
    return rec


def sustained(directory: Path, seconds: float) -> dict:
    """Both devices at 2 kHz in real time: a 20-sample frame per device every 10 ms."""
    t0 = time.monotonic()
    rec = recorder(directory, t0)
    n_frames = int(seconds * RATE_HZ / FRAME)
    data = {d: rows(d, 0, n_frames * FRAME, t0) for d in DTYPES}
    start = time.monotonic()
    for k in range(n_frames):
        due = start + (k + 1) * FRAME / RATE_HZ
        while (delay := due - time.monotonic()) > 0:
            time.sleep(delay)
        for d in DTYPES:
            rec.on_block(d, data[d][k * FRAME:(k + 1) * FRAME])
    rec.close()
    s = rec.stats
    return {"stream_s": n_frames * FRAME / RATE_HZ, "rows": sum(s.rows_written.values()),
            "writer_cpu_s": s.writer_cpu_s, "max_queue_items": s.max_queue_items, "flushes": s.flushes,
            "append_interval_max_s": s.max_append_interval_s,
            "fsync_mean_ms": 1000 * s.fsync_s_total / max(1, s.fsyncs), "fsync_max_ms": 1000 * s.fsync_s_max,
            "fsyncs": s.fsyncs,
            "room_hold_mean_ms": 1000 * s.room_hold_s_total / max(1, s.flushes),
            "room_hold_max_ms": 1000 * s.room_hold_s_max}


def write_fast(directory: Path, seconds: float, frame_rows: int) -> tuple[Path, float, int]:
    """Write `seconds` of both devices as fast as the writer takes them; return path, wall s, rows."""
    t0 = 1000.0
    rec = recorder(directory, t0, queue_alarm_rows=10**9)
    slab = 20 * RATE_HZ  # generate 20 s at a time
    total = int(seconds * RATE_HZ)
    start = time.monotonic()
    for i0 in range(0, total, slab):
        n = min(slab, total - i0)
        for d in DTYPES:
            r = rows(d, i0, n, t0)
            for a in range(0, n, frame_rows):
                rec.on_block(d, r[a:a + frame_rows])
        while rec.queued_samples > 4 * slab:
            time.sleep(0.005)
    rec.close()
    wall = time.monotonic() - start
    assert sum(rec.stats.samples_lost.values()) == 0
    return rec.path, wall, sum(rec.stats.rows_written.values())


def windows(path: Path, n: int = 100) -> list[float]:
    rng = np.random.default_rng(1)
    out = []
    with Recording.open(path) as rec:
        d = rec.duration_s
        for _ in range(n):
            t = float(rng.uniform(0, d - 10))
            a = time.perf_counter()
            got = sum(len(rec.telemetry(dev, t, t + 10.0)) for dev in rec.devices)
            out.append((time.perf_counter() - a) * 1000)
            assert abs(got - 2 * 10 * RATE_HZ) <= 2 * FRAME, got
    return out


class Counter:
    def __init__(self) -> None:
        self.rows = 0

    def on_block(self, device, block) -> None:
        self.rows += len(block)

    def on_event(self, event) -> None:
        pass

    def on_command(self, record) -> None:
        pass


def replay_100x(path: Path, wall_s: float = 5.0) -> dict:
    with Recording.open(path) as rec:
        bus = SessionBus()
        sink = Counter()
        bus.subscribe(sink)
        src = ReplaySource(rec, bus, speed=100.0)
        start_pos = min(600.0, max(0.0, rec.duration_s - 100 * wall_s - 1))
        src.seek(start_pos)
        time.sleep(0.05)
        t = time.monotonic()
        src.play()
        lag = 0.0
        while time.monotonic() - t < wall_s and not src.finished.is_set():
            time.sleep(0.05)
            expected = start_pos + 100.0 * (time.monotonic() - t)
            lag = max(lag, expected - src.position_s)
        src.pause()
        played_s = time.monotonic() - t
        end_pos = src.position_s
        finished = src.finished.is_set()
        src.close()
        expected_rows = sum((rec.samples(d) if finished else rec.row_at(d, end_pos)) - rec.row_at(d, start_pos)
                            for d in rec.devices)
    # lag in wall-clock seconds: how late the worst sample was published, replay's 10-ms tick included
    return {"lag_s": max(0.0, lag / 100.0), "rows_per_s": sink.rows / played_s,
            "rows_ok": sink.rows == expected_rows, "stream_s": end_pos - start_pos}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="stream seconds of the sustained real-time run")
    ap.add_argument("--hours", type=float, default=1.0, help="length of the recording to open, read and replay")
    ap.add_argument("--json", action="store_true", help="end with one JSON line")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cicatrix-bench-") as tmp:
        tmp = Path(tmp)
        print(f"sustained: both devices at 2 kHz, 20-sample frames, {args.seconds:g} s in real time ...", flush=True)
        s = sustained(tmp / "rt", args.seconds)
        cpu_fraction = s["writer_cpu_s"] / s["stream_s"]
        print(f"  {s['rows']} rows, writer CPU {s['writer_cpu_s']:.3f} s = {100 * cpu_fraction:.2f} % of a core, "
              f"largest queue {s['max_queue_items']} items, {s['flushes']} flushes")
        print(f"  appends at most {1000 * s['append_interval_max_s']:.1f} ms apart; {s['fsyncs']} fsyncs: mean "
              f"{s['fsync_mean_ms']:.2f} ms, worst {s['fsync_max_ms']:.2f} ms; holding the close's 1 MB room past "
              f"the file's end: mean {s['room_hold_mean_ms']:.3f} ms, worst {s['room_hold_max_ms']:.3f} ms")
        _, wall, n = write_fast(tmp / "cap", 60.0, FRAME)
        capacity = n / wall
        print(f"capacity: {n} rows in 20-sample blocks written in {wall:.2f} s = {capacity:,.0f} rows/s")
        print(f"writing a {args.hours:g}-hour recording of both devices ...", flush=True)
        path, wall, n = write_fast(tmp / "hour", args.hours * 3600.0, 2000)
        print(f"  {n} rows, {path.stat().st_size / 2**20:.0f} MB in {wall:.1f} s")
        opens = []
        for _ in range(5):
            a = time.perf_counter()
            Recording.open(path).close()
            opens.append(time.perf_counter() - a)
        print(f"open: median {1000 * statistics.median(opens):.1f} ms, worst {1000 * max(opens):.1f} ms "
              "(page cache warm)")
        w = windows(path)
        p99 = float(np.percentile(w, 99))
        print(f"10-s window of both devices: median {statistics.median(w):.2f} ms, p99 {p99:.2f} ms")
        r = replay_100x(path)
        print(f"replay 100x: {r['stream_s']:.0f} s of stream, {r['rows_per_s']:,.0f} rows/s delivered "
              f"(400,000 due), worst lag {1000 * r['lag_s']:.1f} ms, rows exact: {r['rows_ok']}")
    result = {
        "write_rows_per_s": round(capacity),
        "writer_cpu_core_fraction": round(cpu_fraction, 4),
        "max_queue_depth": s["max_queue_items"],
        "open_1h_s": round(max(opens), 4),
        "window_read_median_ms": round(statistics.median(w), 3),
        "window_read_p99_ms": round(p99, 3),
        "replay_100x_lag_s": round(r["lag_s"], 3),
        "append_interval_max_s": round(s["append_interval_max_s"], 4),
        "fsync_mean_ms": round(s["fsync_mean_ms"], 3),
        "fsync_max_ms": round(s["fsync_max_ms"], 3),
        "fsyncs": s["fsyncs"],
        "room_hold_mean_ms": round(s["room_hold_mean_ms"], 4),
        "room_hold_max_ms": round(s["room_hold_max_ms"], 4),
    }
    if args.json:
        print(json.dumps(result))
    return 0 if r["rows_ok"] else 1

if __name__ == "__main__":
    sys.exit(main())
