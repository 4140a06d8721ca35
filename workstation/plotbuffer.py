"""Plot buffers: the last minutes of every plotted channel, with a min/max envelope kept up to date as data arrives.

A `PlotBuffers` is a bus sink. The device reader thread calls `on_block` (≈ 20 samples every 10 ms per device at
2 kHz); it appends under a per-device lock and updates a pyramid of min/max per bucket (buckets of 4, 16, 64, ...,
4096 samples), so the cost of a block stays constant. The GUI timer calls `view(device, channel, window_s,
max_points)`, which reads at most a few thousand precomputed buckets whatever the window (10 s or 10 min) and so
returns in well under a millisecond.

Time axis: seconds since the session start (the first sample of any device, on the host clock). Within a device the
samples are placed by the device's own clock (`t_device_us`), which gives their exact spacing; each device is anchored
once to the host clock at its first block, and re-anchored if its clock jumps (reset, reconnect) by more than
`REANCHOR_S` from what the host clock says.

Non-finite samples (NaN, ±inf, or a value too large for float32) are kept as NaN: a gap in the curve. A bucket's
min/max ignore them (NaN only when the whole bucket is), so `view` returns NaN exactly where there is nothing to
draw and never raises; `finite_extent` gives the range of what can be drawn. A block whose host time is not finite
cannot be placed in time and is skipped (counted in `skipped_blocks`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from workstation.bus import BaseSink

FANOUT = 4  # each pyramid level holds buckets FANOUT times larger than the one below
LEVELS = 6  # bucket sizes 4, 16, 64, 256, 1024, 4096 samples
REANCHOR_S = 1.0


@dataclass(frozen=True, slots=True)
class BufferStats:
    """What a device's buffer holds, for status displays."""

    samples_total: int  # since the session start
    samples_held: int
    t_first_s: float  # oldest sample held, session seconds (nan if empty)
    t_last_s: float  # newest sample, session seconds (nan if empty)


class _DeviceRing:
    """One device: a ring of times, a ring of values (one column per channel) and the min/max pyramid."""

    def __init__(self, channels: Sequence[str], capacity: int) -> None:
        self.channels = tuple(channels)
        self.column = {name: i for i, name in enumerate(self.channels)}
        self.capacity = capacity
        n_ch = len(self.channels)
        self.t_s = np.zeros(capacity, np.float64)
        self.values = np.zeros((capacity, n_ch), np.float32)
        self.sizes = [FANOUT ** (k + 1) for k in range(LEVELS)]
        self.mins = [np.zeros((capacity // s, n_ch), np.float32) for s in self.sizes]
        self.maxs = [np.zeros((capacity // s, n_ch), np.float32) for s in self.sizes]
        self.total = 0  # samples written since the start; the absolute index of the next sample
        self.offset_s: float | None = None  # session seconds = t_device_us * 1e-6 + offset_s
        self.lock = threading.Lock()

    # --- writing (reader thread) ---------------------------------------------------------------------------------
    def append(self, t_s: np.ndarray, values: np.ndarray) -> None:
        n = len(t_s)
        if n > self.capacity:
            t_s, values, n = t_s[-self.capacity :], values[-self.capacity :], self.capacity
        start = self.total % self.capacity
        first = min(n, self.capacity - start)
        self.t_s[start : start + first] = t_s[:first]
        self.values[start : start + first] = values[:first]
        if first < n:
            self.t_s[: n - first] = t_s[first:]
            self.values[: n - first] = values[first:]
        old_total, self.total = self.total, self.total + n
        below_min, below_max, below_size = self.values, self.values, 1
        for size, mins, maxs in zip(self.sizes, self.mins, self.maxs, strict=True):
            b0 = max(old_total // size, -(-(self.total - self.capacity) // size))  # completed and still held
            b1 = self.total // size
            if b1 > b0:
                ratio = size // below_size
                for lo, hi in _ring_runs(b0, b1, len(mins)):
                    src = slice(lo * ratio, hi * ratio)
                    shape = (hi - lo, ratio, -1)
                    mins[lo:hi] = np.fmin.reduce(below_min[src].reshape(shape), axis=1)  # NaN (a gap) ignored
                    maxs[lo:hi] = np.fmax.reduce(below_max[src].reshape(shape), axis=1)
            below_min, below_max, below_size = mins, maxs, size

    # --- reading (GUI thread) ------------------------------------------------------------------------------------
    def first_held(self) -> int:
        return max(0, self.total - self.capacity)

    def index_at_or_after(self, t_s: float) -> int:
        """Absolute index of the first held sample at time >= t_s (times are non-decreasing)."""
        lo, hi = self.first_held(), self.total
        p_lo = lo % self.capacity
        if hi - lo < self.capacity or p_lo == 0:
            seg = self.t_s[p_lo : p_lo + (hi - lo)]
            return lo + int(np.searchsorted(seg, t_s, side="left"))
        older, newer = self.t_s[p_lo:], self.t_s[:p_lo]  # wrapped: two sorted runs
        if older[-1] >= t_s:
            return lo + int(np.searchsorted(older, t_s, side="left"))
        return lo + len(older) + int(np.searchsorted(newer, t_s, side="left"))

    def envelope(self, col: int, a0: int, a1: int, bucket: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Min, max and first absolute index of each bucket of `bucket` samples (aligned to multiples of `bucket`)
        that overlaps [a0, a1); partial buckets at either end cover only the part inside [a0, a1)."""
        level = max((k for k, s in enumerate(self.sizes) if bucket % s == 0), default=-1)
        first_full, last_full = -(-a0 // bucket), a1 // bucket  # bucket numbers fully inside [a0, a1)
        mins: list[np.ndarray] = []
        maxs: list[np.ndarray] = []
        starts: list[np.ndarray] = []

        def partial(p0: int, p1: int) -> None:
            if p1 > p0:
                chunk = _ring_take(self.values[:, col], p0, p1)
                mins.append(np.fmin.reduce(chunk, keepdims=True))
                maxs.append(np.fmax.reduce(chunk, keepdims=True))
                starts.append(np.array([p0]))

        head_end = min(a1, first_full * bucket)
        partial(a0, head_end)
        if last_full > first_full:
            if level < 0:
                src_min = src_max = self.values[:, col]
                ratio = bucket
                s0, s1 = first_full * bucket, last_full * bucket
            else:
                size = self.sizes[level]
                src_min, src_max = self.mins[level][:, col], self.maxs[level][:, col]
                ratio = bucket // size
                s0, s1 = first_full * ratio, last_full * ratio
            n_full = last_full - first_full
            mins.append(np.fmin.reduce(_ring_take(src_min, s0, s1).reshape(n_full, ratio), axis=1))
            maxs.append(np.fmax.reduce(_ring_take(src_max, s0, s1).reshape(n_full, ratio), axis=1))
            starts.append(np.arange(first_full, last_full) * bucket)
        partial(max(head_end, last_full * bucket), a1)
        if not mins:
            empty = np.empty(0, np.float32)
            return empty, empty, np.empty(0, np.int64)
        return np.concatenate(mins), np.concatenate(maxs), np.concatenate(starts).astype(np.int64)


def _ring_runs(a0: int, a1: int, size: int) -> list[tuple[int, int]]:
    """The physical index runs of absolute indices [a0, a1) in a ring of `size` slots (a1 - a0 <= size)."""
    p0 = a0 % size
    n = a1 - a0
    if p0 + n <= size:
        return [(p0, p0 + n)]
    return [(p0, size), (0, p0 + n - size)]


def _ring_take(arr: np.ndarray, a0: int, a1: int) -> np.ndarray:
    runs = _ring_runs(a0, a1, len(arr))
    if len(runs) == 1:
        lo, hi = runs[0]
        return arr[lo:hi].copy()
    return np.concatenate([arr[lo:hi] for lo, hi in runs])


class PlotBuffers(BaseSink):
    """Thread-safe ring buffers of the plotted channels of each device, fed as a session-bus sink.

    `channels_by_device` maps a device name ("light", "pen") to the block fields to keep (numeric or boolean; kept as
    float32). Blocks of unknown devices are ignored. Capacity is rounded up to a whole number of the largest bucket.
    """

    def __init__(
        self, channels_by_device: Mapping[str, Sequence[str]], capacity_s: float = 600.0, rate_hz: float = 2000.0
    ) -> None:
        largest = FANOUT**LEVELS
        samples = max(1, int(np.ceil(capacity_s * rate_hz)))
        self.capacity_samples = -(-samples // largest) * largest
        self.rate_hz = rate_hz
        self._devices = {dev: _DeviceRing(chs, self.capacity_samples) for dev, chs in channels_by_device.items()}
        self._session_t0_host_s: float | None = None
        self._t0_lock = threading.Lock()
        self.skipped_blocks = 0  # blocks whose host time was not finite: they cannot be placed on the time axis

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(self._devices)

    @property
    def session_t0_host_s(self) -> float | None:
        """Session time 0 on the monotonic host clock (None until set or until the first sample)."""
        with self._t0_lock:
            return self._session_t0_host_s

    def clear(self, session_t0_host_s: float | None = None) -> None:
        """Forget every sample (a replay seek, a new session). With `session_t0_host_s`, time 0 is that host time
        (a recording's start) instead of the first sample that arrives next."""
        with self._t0_lock:
            for ring in self._devices.values():
                with ring.lock:
                    ring.total, ring.offset_s = 0, None  # every index derives from total: the old data is unreachable
            self._session_t0_host_s = session_t0_host_s

    def channels(self, device: str) -> tuple[str, ...]:
        return self._devices[device].channels

    # --- Sink ----------------------------------------------------------------------------------------------------
    def on_block(self, device: str, block: np.ndarray) -> None:
        ring = self._devices.get(device)
        if ring is None or len(block) == 0:
            return
        t_host_s = float(block["t_host_s"][-1])
        if not np.isfinite(t_host_s):
            self.skipped_blocks += 1
            return
        with self._t0_lock:
            if self._session_t0_host_s is None:
                span_s = float(block["t_device_us"][-1] - block["t_device_us"][0]) * 1e-6
                self._session_t0_host_s = t_host_s - span_s  # the first sample held is at 0 s
            t0 = self._session_t0_host_s
        t_device_s = block["t_device_us"].astype(np.float64) * 1e-6
        values = np.empty((len(block), len(ring.channels)), np.float32)
        with np.errstate(over="ignore", invalid="ignore"):  # a float64 beyond float32's range becomes inf, then NaN
            for i, name in enumerate(ring.channels):
                values[:, i] = block[name]
        values[~np.isfinite(values)] = np.nan
        with ring.lock:
            expected = t_host_s - t0
            last = ring.t_s[(ring.total - 1) % ring.capacity] if ring.total else -np.inf
            if ring.offset_s is None or abs(t_device_s[-1] + ring.offset_s - expected) > REANCHOR_S:
                ring.offset_s = expected - float(t_device_s[-1])
            t_s = np.maximum(t_device_s + ring.offset_s, last)  # never step back, so the time ring stays sorted
            ring.append(t_s, values)

    # --- reading -------------------------------------------------------------------------------------------------
    def stats(self, device: str) -> BufferStats:
        ring = self._devices[device]
        with ring.lock:
            if ring.total == 0:
                return BufferStats(0, 0, float("nan"), float("nan"))
            held = ring.total - ring.first_held()
            t_first = float(ring.t_s[ring.first_held() % ring.capacity])
            t_last = float(ring.t_s[(ring.total - 1) % ring.capacity])
            return BufferStats(ring.total, held, t_first, t_last)

    def latest(self, device: str, channel: str) -> float:
        """The newest value of a channel (nan before the first block)."""
        ring = self._devices[device]
        with ring.lock:
            if ring.total == 0:
                return float("nan")
            return float(ring.values[(ring.total - 1) % ring.capacity, ring.column[channel]])

    def view(
        self, device: str, channel: str, window_s: float, max_points: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Times (session seconds) and values of the last `window_s` seconds of a channel.

        With `max_points` (>= 4) and more samples than that in the window, returns the min/max envelope instead:
        one (min, max) pair per bucket of consecutive samples, both at the time of the bucket's first sample, so at
        most `max_points` points. Buckets are aligned to multiples of their size in the sample count, so a bucket's
        extremes do not move as the window slides. With `max_points=None`, returns every sample (slow to draw).
        """
        ring = self._devices[device]
        col = ring.column[channel]
        with ring.lock:
            if ring.total == 0:
                return np.empty(0), np.empty(0)
            t_last = float(ring.t_s[(ring.total - 1) % ring.capacity])
            a0, a1 = ring.index_at_or_after(t_last - window_s), ring.total
            n = a1 - a0
            if max_points is None or n <= max_points:
                return _ring_take(ring.t_s, a0, a1), _ring_take(ring.values[:, col], a0, a1).astype(np.float64)
            if max_points < 4:
                raise ValueError("max_points must be at least 4 (two min/max pairs)")
            pairs = max_points // 2
            # n samples overlap at most ceil((n - 1) / bucket) + 1 aligned buckets (partial ones at both ends)
            bucket = _bucket_size(-(-(n - 1) // (pairs - 1)), ring.sizes)
            mins, maxs, starts = ring.envelope(col, a0, a1, bucket)
            t = ring.t_s[starts % ring.capacity]
        y = np.empty(2 * len(mins))
        y[0::2], y[1::2] = mins, maxs
        return np.repeat(t, 2), y


def finite_extent(y: np.ndarray) -> tuple[float, float] | None:
    """(min, max) of the finite values of a view, or None when there are none (nothing to fit a range to)."""
    finite = y[np.isfinite(y)]
    return (float(finite.min()), float(finite.max())) if len(finite) else None


def _bucket_size(at_least: int, sizes: Sequence[int]) -> int:
    """The smallest bucket >= at_least that is a multiple of the largest pyramid level not above it."""
    level = max((s for s in sizes if s <= at_least), default=1)
    return -(-at_least // level) * level
