"""Plot buffers: exact min/max envelopes (checked against brute force, across the ring wrap), time axis, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.protocol import LIGHT_BLOCK, PEN_BLOCK
from workstation.plotbuffer import PlotBuffers

RATE_HZ = 1000.0
PERIOD_US = 1000


def pen_block(start_index: int, values: np.ndarray, t_host_s: float | None = None) -> np.ndarray:
    """A pen block whose samples carry absolute indices start_index.. on the device clock (1 kHz)."""
    n = len(values)
    block = np.zeros(n, PEN_BLOCK)
    block["t_device_us"] = (start_index + np.arange(n)) * PERIOD_US
    block["t_host_s"] = 50.0 + (start_index + n - 1) / RATE_HZ if t_host_s is None else t_host_s
    block["depth_mm"] = values
    block["motor_current_ma"] = -values
    return block


def feed(buffers: PlotBuffers, values: np.ndarray, block_sizes: list[int]) -> None:
    i = 0
    for size in block_sizes:
        if i >= len(values):
            break
        buffers.on_block("pen", pen_block(i, values[i : i + size]))
        i += size
    if i < len(values):
        buffers.on_block("pen", pen_block(i, values[i:]))


def check_envelope(buffers: PlotBuffers, channel: str, window_s: float, max_points: int) -> None:
    """The decimated view is, bucket by bucket, the exact min and max of the raw samples it stands for."""
    t_raw, y_raw = buffers.view("pen", channel, window_s, None)
    t, y = buffers.view("pen", channel, window_s, max_points)
    if len(t_raw) <= max_points:
        np.testing.assert_array_equal(t, t_raw)
        np.testing.assert_array_equal(y, y_raw)
        return
    assert 0 < len(t) <= max_points and len(t) % 2 == 0
    np.testing.assert_array_equal(t[0::2], t[1::2])
    starts = np.searchsorted(t_raw, t[0::2])
    np.testing.assert_array_equal(t_raw[starts], t[0::2])  # every bucket starts on a real sample
    assert starts[0] == 0
    ends = np.append(starts[1:], len(t_raw))
    assert np.all(ends > starts)
    brute_min = np.array([y_raw[a:b].min() for a, b in zip(starts, ends, strict=True)])
    brute_max = np.array([y_raw[a:b].max() for a, b in zip(starts, ends, strict=True)])
    np.testing.assert_array_equal(y[0::2], brute_min)
    np.testing.assert_array_equal(y[1::2], brute_max)


def small_buffers(capacity_samples: int = 8192) -> PlotBuffers:
    return PlotBuffers({"pen": ["depth_mm", "motor_current_ma"]}, capacity_s=capacity_samples / RATE_HZ, rate_hz=RATE_HZ)


def test_raw_view_returns_the_last_window_exactly() -> None:
    buffers = small_buffers()
    values = np.arange(3000, dtype=np.float32)
    feed(buffers, values, [20] * 200)
    t, y = buffers.view("pen", "depth_mm", 1.0, None)
    # the window ends at the newest sample and includes the sample exactly window_s before it
    np.testing.assert_array_equal(y, values[-1001:])
    np.testing.assert_allclose(np.diff(t), 1 / RATE_HZ, rtol=1e-9)
    assert t[0] == pytest.approx(1.999, abs=1e-9)  # session seconds: the first sample is at 0
    assert buffers.latest("pen", "motor_current_ma") == -2999.0


def test_envelope_equals_brute_force_across_the_ring_wrap() -> None:
    buffers = small_buffers(8192)
    rng = np.random.default_rng(7)
    values = rng.normal(size=8192 * 3 + 1234).astype(np.float32)
    feed(buffers, values, list(rng.integers(1, 60, size=5000)))
    stats = buffers.stats("pen")
    assert stats.samples_total == len(values) and stats.samples_held == 8192
    _, y_all = buffers.view("pen", "depth_mm", 1e9, None)
    np.testing.assert_array_equal(y_all, values[-8192:])  # the held data crosses the physical end of the ring
    for window_s in (0.05, 0.7, 2.5, 8.0, 100.0):
        for max_points in (4, 5, 10, 64, 300, 2000):
            check_envelope(buffers, "depth_mm", window_s, max_points)
            check_envelope(buffers, "motor_current_ma", window_s, max_points)


@settings(max_examples=60, deadline=None)
@given(
    n_samples=st.integers(1, 30000),
    block_sizes=st.lists(st.integers(1, 500), min_size=1, max_size=60),
    window_s=st.floats(0.001, 20.0),
    max_points=st.integers(4, 3000),
    seed=st.integers(0, 2**16),
)
def test_envelope_equals_brute_force_for_any_feed(
    n_samples: int, block_sizes: list[int], window_s: float, max_points: int, seed: int
) -> None:
    buffers = small_buffers(4096)
    values = np.random.default_rng(seed).integers(-1000, 1000, size=n_samples).astype(np.float32)
    feed(buffers, values, block_sizes * (1 + n_samples // max(1, sum(block_sizes))))
    check_envelope(buffers, "depth_mm", window_s, max_points)


def test_ten_minute_window_at_2khz_is_decimated_within_the_point_budget() -> None:
    buffers = PlotBuffers({"light": ["irradiance_mw_cm2", "lamp_temp_c"]}, capacity_s=600, rate_hz=2000)
    assert buffers.capacity_samples >= 1_200_000
    n = 1_200_000
    block = np.zeros(n, LIGHT_BLOCK)
    block["t_device_us"] = np.arange(n) * 500
    block["t_host_s"] = 1000.0
    block["irradiance_mw_cm2"] = np.sin(np.arange(n) / 5000.0)
    buffers.on_block("light", block)
    for window_s, expected_span_s in ((10, 10), (60, 60), (600, 599.9995)):
        t, y = buffers.view("light", "irradiance_mw_cm2", window_s, 2000)
        assert len(t) <= 2000
        assert t[-1] - t[0] == pytest.approx(expected_span_s, abs=0.01 * window_s)
        assert y.min() >= -1.0 and y.max() <= 1.0


def test_device_clock_reset_reanchors_on_the_host_clock() -> None:
    buffers = small_buffers()
    buffers.on_block("pen", pen_block(0, np.zeros(100, np.float32), t_host_s=10.0))
    buffers.on_block("pen", pen_block(100, np.ones(100, np.float32), t_host_s=10.1))
    # the device restarted: its clock is back near zero while the host clock moved on by 5 s
    buffers.on_block("pen", pen_block(0, np.full(100, 2, np.float32), t_host_s=15.1))
    t, y = buffers.view("pen", "depth_mm", 100.0, None)
    assert np.all(np.diff(t) >= 0)
    assert t[-1] == pytest.approx(15.1 - (10.0 - 0.099), abs=1e-9)
    assert list(y[-100:]) == [2.0] * 100


def test_unknown_device_empty_view_and_too_small_budget() -> None:
    buffers = small_buffers()
    buffers.on_block("light", np.zeros(5, LIGHT_BLOCK))
    t, y = buffers.view("pen", "depth_mm", 10.0, 100)
    assert len(t) == len(y) == 0
    assert np.isnan(buffers.latest("pen", "depth_mm"))
    assert buffers.stats("pen").samples_total == 0
    buffers.on_block("pen", pen_block(0, np.zeros(10, np.float32)))
    with pytest.raises(ValueError, match="at least 4"):
        buffers.view("pen", "depth_mm", 10.0, 3)


def test_concurrent_writer_and_reader_see_consistent_data() -> None:
    """A writer thread feeds value == absolute sample index; every view must be internally consistent."""
    buffers = small_buffers(8192)
    n_blocks, block_n = 3000, 20
    done = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for k in range(n_blocks):
                i = k * block_n
                buffers.on_block("pen", pen_block(i, np.arange(i, i + block_n, dtype=np.float32)))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    views = 0
    while not done.is_set() or views < 50:
        t, y = buffers.view("pen", "depth_mm", 3.0, None)
        if len(t):
            np.testing.assert_array_equal(y, np.round(t * RATE_HZ))  # no torn rows: time and value agree
            np.testing.assert_array_equal(np.diff(y), 1.0)
        t, y = buffers.view("pen", "depth_mm", 6.0, 200)
        if len(t) > 0:
            assert len(t) <= 200
            starts = np.round(t[0::2] * RATE_HZ)
            np.testing.assert_array_equal(y[0::2], starts)  # a rising ramp: a bucket's min is its first sample
            np.testing.assert_array_equal(y[1::2][:-1], starts[1:] - 1)  # ... and its max the last one
        views += 1
    thread.join()
    assert not errors
    assert buffers.stats("pen").samples_total == n_blocks * block_n


def test_clear_forgets_every_sample_and_sets_time_zero() -> None:
    """A replay seek: nothing before it stays on screen, and the axis keeps the recording's time (t0 given)."""
    buffers = small_buffers()
    feed(buffers, np.arange(5000, dtype=float), [100] * 50)
    assert buffers.stats("pen").samples_total == 5000
    buffers.clear(session_t0_host_s=40.0)
    assert buffers.stats("pen").samples_total == 0
    t, y = buffers.view("pen", "depth_mm", 10.0)
    assert len(t) == len(y) == 0
    values = np.full(300, 7.0)
    buffers.on_block("pen", pen_block(20_000, values, t_host_s=60.0))
    stats = buffers.stats("pen")
    assert stats.samples_total == 300
    assert stats.t_last_s == pytest.approx(20.0)  # host 60 s, recording start at 40 s
    t, y = buffers.view("pen", "depth_mm", 10.0, max_points=8)
    assert np.all(y == 7.0) and t.min() >= 19.6
