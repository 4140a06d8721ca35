"""A device's clock is judged against the host's from the promptest frame, not the last one (drivers/plausibility.py).

Fourth fresh tester of issue 12: after the workstation was held up (a loaded machine: `the workstation was held up for
507 ms`), the frames the device sent meanwhile were read at once, and the next ones were rejected as "device clock
jumped 0.991 s ahead in 0.011 s of host time" and the clock called restarted: samples dropped from the recording and
the device blamed for the workstation's stall. Frames from the far future, and backward ones, are still refused."""

from __future__ import annotations

import pytest

from drivers.plausibility import CLOCK_SLACK_S, DeviceClock

FRAME_US = 10_000  # 10 ms frames


def _feed(clock: DeviceClock, frames: list[tuple[int, float]]) -> list[tuple[bool, str]]:
    return [clock.check(us - FRAME_US + 500, us, host) for us, host in frames]


@pytest.mark.parametrize("stall_s", [0.5, 1.3, 3.0])
@pytest.mark.parametrize("last_read_late", [False, True])
def test_a_backlog_read_after_a_stall_is_taken_whole(stall_s, last_read_late):
    clock = DeviceClock()
    prompt = [(k * FRAME_US, 100.0 + k * 0.01 + 0.002) for k in range(1, 51)]  # 0.5 s on time, 2 ms in transit
    assert all(ok and not msg for ok, msg in _feed(clock, prompt))
    t_end = 100.0 + 0.5 + stall_s  # the reader looks again
    n = int(stall_s / 0.01)
    # what the device sent during the stall, read within a few ms (the first one, as the tester saw, read late alone)
    backlog = [((51 + k) * FRAME_US, t_end + (0.0 if last_read_late and k == 0 else 0.011 + k * 1e-5))
               for k in range(n)]
    after = [((51 + n + k) * FRAME_US, t_end + 0.02 + k * 0.01) for k in range(1, 30)]  # on time again
    results = _feed(clock, backlog + after)
    assert all(ok and not msg for ok, msg in results), [m for _ok, m in results if m][:3]


@pytest.mark.parametrize("stall_s", [0.6, 1.0, 2.5])
def test_a_stale_frame_read_late_then_the_current_one_is_not_a_clock_restart(stall_s):
    """The tester's case: the frame sent just before the stall is read after it, and the line lost the frames of the
    stall (a full buffer): the next frame is `stall_s` ahead on the device clock, 11 ms later on the host's. That is
    samples missing (said as such by the driver), not a clock from the future."""
    clock = DeviceClock()
    assert all(ok for ok, _ in _feed(clock, [(k * FRAME_US, 100.0 + k * 0.01 + 0.002) for k in range(1, 51)]))
    t_end = 100.5 + stall_s
    stale = (51 * FRAME_US, t_end)  # sent at 100.51, read at the end of the stall
    jump = int(stall_s / 0.01)
    current = [((51 + jump + k) * FRAME_US, t_end + 0.011 + k * 0.01) for k in range(30)]
    results = _feed(clock, [stale, *current])
    assert all(ok and not msg for ok, msg in results), [m for _ok, m in results if m][:3]


def test_frames_from_the_future_and_backward_ones_are_still_refused():
    clock = DeviceClock()
    assert all(ok for ok, _ in _feed(clock, [(k * FRAME_US, 100.0 + k * 0.01) for k in range(1, 51)]))
    ahead = int((CLOCK_SLACK_S + 0.2) * 1e6)
    ok, msg = clock.check(50 * FRAME_US + ahead, 50 * FRAME_US + ahead, 100.51)  # 0.7 s ahead in 10 ms
    assert not ok and "jumped" in msg
    ok, msg = clock.check(40 * FRAME_US, 40 * FRAME_US, 100.52)  # backward
    assert not ok and "did not move forward" in msg
    # a stall does not open the door to the future: after 1 s of nothing, 1 s + the slack ahead is the limit
    ok, msg = clock.check(50 * FRAME_US + int(2.0e6), 50 * FRAME_US + int(2.0e6), 101.5)
    assert not ok and "jumped" in msg
