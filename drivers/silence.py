"""How long an observer has *seen* nothing: the one rule behind every silence watchdog (host and device).

A watchdog that measures silence as "now minus the last sign of life" blames the other side for the time it could not
look itself. On a workstation that is busy (a garbage collection, an antivirus scan, a loaded machine) every thread of
the process can stop for a few hundred milliseconds; when they run again the bytes the device sent meanwhile wait,
unread, in the port, yet a watchdog that runs before the reader sees 300 ms without a sample and trips. The same holds
for an emulated device that shares the host's process: its receiver and the host's heartbeat sender stop together.

`SilenceWatch` counts only the stretches its observer was looking. The observer calls `looked(t)` every time it
looks (a read that returned, a watchdog tick); a gap between two looks longer than `BLIND_GAP_S` is time it was not
looking, and that stretch does not count as silence. Two bounds judge a silence (`lost`):

- *seen*: silence the observer saw while looking, more than the watchdog's limit (250 ms for telemetry and for the
  heartbeat, docs/protocol.md): the usual trip, as prompt as before when the observer runs on time;
- *wall*: silence on the wall clock, more than `BLIND_LIMIT_FACTOR` × the limit (1 s), whatever the observer saw: a
  workstation that cannot look for that long is not supervising, and the device stops all the same.

The host side does not lose a bound it had: while the host cannot look it cannot stop anything either, and the
device's own heartbeat watchdog, judged by the device, is the backstop. Every blind stretch the safety monitor finds is
recorded (`stall` event), so an audit judges the recording with the same rule.

Thread-safety: `looked`, `heard` and `blind` are called from one thread at a time (the observer's, or under the
caller's lock); `lost` and `seen_s` may be read from another (the blind stretches are a list replaced whole, never
edited in place, and every read clips them to the span it asks about).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["BLIND_GAP_S", "BLIND_LIMIT_FACTOR", "STALL_DETAIL", "SilenceWatch", "lost_words", "wait_seen"]

# A look that comes more than this after the previous one means the observer was held up (its own period is 10–50 ms):
# the stretch between the two is blind, not silence seen.
BLIND_GAP_S = 0.1
# Silence on the wall clock past this many times a watchdog's limit is lost, whatever the observer saw.
BLIND_LIMIT_FACTOR = 4.0
# The detail key of a silence judged lost on the wall-clock bound alone: the seconds the workstation could not look.
STALL_DETAIL = "workstation_stall_s"


class SilenceWatch:
    """Silence since the last sign of life, counting only the time its observer was looking.

    `heard(t)`: a sign of life at host time t (s). `looked(t)`: the observer looked at t and found whatever it found
    (call it after handling what it found). `blind(t0, t1)`: a stretch the observer could not look, known otherwise
    (the audit's recorded stalls). `seen_s(t)`: silence seen up to t, s; `wall_s(t)`: silence on the wall clock, s.
    `lost(t, limit_s)`: seen > limit_s or wall > BLIND_LIMIT_FACTOR × limit_s.

    The blind stretches are kept as intervals, not as a running sum: a sign of life stamped before a blind stretch
    can be handed in after it (the reader stamped a block, then the whole process was held up, then the watchdog
    looked before the block was published). Such a sign of life does not erase the blind time that came after its
    stamp; a sum reset by it counted the whole hold-up as silence seen (a false `telemetry_lost` of "411 ms" after
    a 400 ms hold-up, under load in CI). Signs of life never move the last one back in time.
    """

    __slots__ = ("_blind", "_heard_s", "_looked_s", "_recent", "blind_gap_s")

    # At most this many separate blind stretches are kept after the last sign of life; past it the oldest is
    # dropped, which can only count more silence as seen (the safe side). Adjacent stretches are merged, so an
    # observer that is always late keeps one.
    MAX_STRETCHES = 64
    # The last few blind stretches whole, signs of life or not: what `stall_within` asks about.
    RECENT_STRETCHES = 8

    def __init__(self, t: float, *, blind_gap_s: float = BLIND_GAP_S) -> None:
        self.blind_gap_s = blind_gap_s
        self._heard_s = t
        self._looked_s = t
        self._blind: list[tuple[float, float]] = []  # blind stretches (t0, t1), s, in time order, ending after heard
        self._recent: tuple[tuple[float, float], ...] = ()  # the last blind stretches, not cut by signs of life

    @property
    def heard_s(self) -> float:
        """Host time of the last sign of life, s."""
        return self._heard_s

    def heard(self, t: float) -> None:
        if t > self._heard_s:
            self._heard_s = t
            # a new list, never edited in place: `seen_s` may read it from another thread
            self._blind = [(max(t0, t), t1) for t0, t1 in self._blind if t1 > t]
        self._looked_s = max(self._looked_s, t)

    def looked(self, t: float) -> float:
        """The observer looked at t; returns the blind stretch this look ends (0.0 when it came on time), s."""
        gap = t - self._looked_s
        self._looked_s = max(self._looked_s, t)
        if gap <= self.blind_gap_s:
            return 0.0
        self.blind(t - gap, t)
        return gap

    def blind(self, t0: float, t1: float) -> None:
        """The observer could not look from t0 to t1 (s): only the part after the last sign of life counts."""
        if t1 > t0:
            self._recent = (*self._recent, (t0, t1))[-self.RECENT_STRETCHES:]
        t0 = max(t0, self._heard_s)
        if t1 <= t0:
            return
        stretches = [*self._blind, (t0, t1)]
        stretches.sort()
        merged: list[tuple[float, float]] = []
        for a, b in stretches:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        self._blind = merged[-self.MAX_STRETCHES:]

    def _blind_between(self, t0: float, t1: float) -> float:
        return sum(max(0.0, min(b, t1) - max(a, t0)) for a, b in self._blind)

    def stall_within(self, t0: float, t1: float) -> float:
        """The longest recent stretch the observer could not look (whole, s) that covers more than `blind_gap_s` of
        the span t0..t1 (host time, s), signs of life in it or not; 0.0 when none: the stall behind samples a device
        clock says are missing from that span (drivers/frames.py)."""
        return max((b - a for a, b in self._recent if min(b, t1) - max(a, t0) > self.blind_gap_s), default=0.0)

    @property
    def blind_s(self) -> float:
        """Seconds since the last sign of life the observer could not look (its blind stretches), s."""
        return self._blind_between(self._heard_s, float("inf"))

    def wall_s(self, t: float) -> float:
        return max(0.0, t - self._heard_s)

    def seen_s(self, t: float) -> float:
        """Silence the observer saw: up to its last look (not past it: it has not looked since), less blind time."""
        heard, end = self._heard_s, min(t, self._looked_s)
        return max(0.0, end - heard - self._blind_between(heard, end))

    def lost(self, t: float, limit_s: float) -> bool:
        return self.seen_s(t) > limit_s or self.wall_s(t) > BLIND_LIMIT_FACTOR * limit_s


def lost_words(subject: str, watch: SilenceWatch, t: float, limit_s: float) -> tuple[str, dict[str, float]]:
    """The sentence and details of a silence `watch.lost(t, limit_s)` judged lost, the one place they are made.

    Silence seen past `limit_s` is the device's: "no telemetry from <subject> for N ms". Lost on the wall-clock bound
    alone, the workstation could not look (a stall of X s, `details[STALL_DETAIL]`): the device is stopped all the
    same, but the sentence must not say it went silent. Details: `seen_silence_s`, `silence_s` (s)."""
    wall_s, seen_s = watch.wall_s(t), watch.seen_s(t)
    details = {"seen_silence_s": round(seen_s, 4), "silence_s": round(wall_s, 4)}
    if seen_s > limit_s:
        return f"no telemetry from {subject} for {wall_s * 1000:.0f} ms", details
    stall_s = wall_s - seen_s
    details[STALL_DETAIL] = round(stall_s, 4)
    return (f"the workstation could not look for {stall_s:.1f} s (a stall of {stall_s:.1f} s, over the "
            f"{BLIND_LIMIT_FACTOR * limit_s:g} s limit), so it could not supervise {subject}: stopped, though "
            f"{subject}'s telemetry was not seen to stop"), details


def wait_seen(seen: Callable[[], bool], timeout_s: float, *, stop: Callable[[], bool] | None = None,
              poll_s: float = 0.005, clock: Callable[[], float] = time.monotonic) -> bool:
    """Poll `seen()` every `poll_s` until it is true (True). False once `timeout_s` has passed while this thread was
    looking (a stretch it was held up does not count, the same rule as the watchdogs), or BLIND_LIMIT_FACTOR ×
    `timeout_s` on the wall clock, or when `stop()` says so. For the waits that judge a device on its telemetry (a
    reset's fresh block, a step's "seen stopped" after STOP): the waiter held up is not the device late."""
    waited = SilenceWatch(clock())
    while not seen():
        now = clock()
        waited.looked(now)
        if waited.lost(now, timeout_s) or (stop is not None and stop()):
            return False
        time.sleep(poll_s)
    return True
