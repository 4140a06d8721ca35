"""What a CRC-valid telemetry frame must also be before anyone sees it.

A good CRC says a frame is well-formed, not true. Two checks run in the driver's reader thread, after decoding and
before the block is published, so the safety monitor, the session and the recorder never see what fails them:

- `DeviceClock`: the device's sample clock moves forward, and not faster than the host's clock allows. A repeated or
  backward frame, or one from the far future, is rejected whole. A device whose clock really restarted (a reboot the
  host did not see) is followed again once `REBASE_AFTER_FRAMES` frames in a row agree with each other.
- `Plausibility`: every sample against its channel's declaration (`drivers.types.Channel`): the physical range, and
  for integrating channels (the dose) no fall while the device stays active, no rise while it stays inactive (a
  closed shutter delivers nothing), and no rise faster than the declared maximum rate on the device clock. Failing samples are dropped and reported; the others are kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drivers.channels import MAX_IRRADIANCE_MW_CM2, MIN_EXPECTED_IRRADIANCE_MW_CM2
from drivers.types import Channel

CLOCK_SLACK_S = 0.5  # how far the device clock may run ahead of the host's between two frames (bursts, buffering)
CLOCK_RATE_TOLERANCE = 0.01  # a crystal is within 1 % (the emulators: 0 ppm unless told otherwise)
REBASE_AFTER_FRAMES = 5
MONOTONIC_EPS = 0.01  # wire resolution (0.001 mJ/cm²) plus float32 rounding of values up to 6000, with room


class DeviceClock:
    """Per-connection state of the device clock, as seen in accepted telemetry frames."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """A fresh connection: the next frame is taken as it comes."""
        self.last_us: int | None = None
        # The promptest accepted frame (device µs, host s): the least arrival minus device time, drift allowed for.
        # How far the device clock may be ahead is judged from it, not from the last frame, which may have been read
        # late (the workstation held up: its backlog then arrives at once, and is not from the future).
        self._ref: tuple[int, float] = (0, 0.0)
        self._candidate: tuple[int, float] | None = None
        self._candidate_frames = 0

    def check(self, first_us: int, last_us: int, t_host_s: float) -> tuple[bool, str]:
        """(accepted, message). Rejected: the message says why. Accepted with a message: the clock was re-based."""
        if self.last_us is None:
            self._take(last_us, t_host_s, rebase=True)
            return True, ""
        problem = _clock_problem(self.last_us, *self._ref, first_us, t_host_s)
        if not problem:
            self._take(last_us, t_host_s)
            return True, ""
        cand = self._candidate
        consistent = cand is not None and not _clock_problem(cand[0], *cand, first_us, t_host_s)
        self._candidate_frames = self._candidate_frames + 1 if consistent else 1
        self._candidate = (last_us, t_host_s)
        if self._candidate_frames >= REBASE_AFTER_FRAMES:
            self._take(last_us, t_host_s, rebase=True)
            return True, (f"the device clock restarted ({problem}); followed again after {REBASE_AFTER_FRAMES} "
                          "consistent frames")
        return False, problem

    def _take(self, last_us: int, t_host_s: float, *, rebase: bool = False) -> None:
        ref_us, ref_host_s = self._ref
        late_s = (t_host_s - ref_host_s) - (last_us - ref_us) / 1e6  # arrival offset against the reference frame's
        if rebase or late_s <= CLOCK_RATE_TOLERANCE * max(0.0, t_host_s - ref_host_s):  # as prompt, drift allowed
            self._ref = (last_us, t_host_s)
        self.last_us = last_us
        self._candidate, self._candidate_frames = None, 0


def _clock_problem(prev_us: int, ref_us: int, ref_host_s: float, first_us: int, t_host_s: float) -> str:
    """Why a frame's first sample (device µs) arriving at host time t_host_s (s) is not the next on this device
    clock: not after the last accepted sample `prev_us`, or further ahead of the promptest accepted frame
    (`ref_us` at `ref_host_s`) than the host's clock has run since (1 % rate tolerance, CLOCK_SLACK_S)."""
    if first_us <= prev_us:
        return f"device clock did not move forward ({first_us} µs after {prev_us} µs)"
    host_s = max(0.0, t_host_s - ref_host_s)
    if first_us - ref_us > (host_s * (1 + CLOCK_RATE_TOLERANCE) + CLOCK_SLACK_S) * 1e6:
        return f"device clock jumped {(first_us - ref_us) / 1e6:.3f} s ahead in {host_s:.3f} s of host time"
    return ""


@dataclass(frozen=True, slots=True)
class Violation:
    """The first implausible sample of one channel in a block."""

    channel: str
    unit: str
    value: float
    why: str
    samples: int  # how many samples of the block failed this channel


class Plausibility:
    """Checks decoded blocks against channel declarations; keeps the last accepted sample between blocks."""

    def __init__(self, channels: tuple[Channel, ...], active_field: str) -> None:
        self.channels = tuple(c for c in channels if c.checked)
        self.active_field = active_field
        self.reset()

    def reset(self) -> None:
        self.last_active = False
        self._last: dict[str, tuple[float, int, bool]] = {}  # channel -> (value, t_device_us, active)

    def check(self, block: np.ndarray) -> tuple[np.ndarray, list[Violation]]:
        """(mask of plausible samples, violations). `block` needs `t_device_us` and the active field."""
        n = len(block)
        ok = np.ones(n, bool)
        violations: list[Violation] = []
        for c in self.channels:
            v = block[c.name].astype(np.float64)
            bad = ~np.isfinite(v) | (v < c.minimum) | (v > c.maximum)
            if bad.any():
                i = int(np.argmax(bad))
                violations.append(Violation(c.name, c.unit, float(v[i]), f"outside {c.minimum:g}–{c.maximum:g}",
                                            int(bad.sum())))
            ok &= ~bad
        active = block[self.active_field].astype(bool)
        for c in self.channels:
            if c.exposure_monotonic or c.max_rise_per_s < math.inf:
                bad, why = self._sequence(c, block[c.name].astype(np.float64), block["t_device_us"], active, ok)
                if bad.any():
                    i = int(np.argmax(bad))
                    violations.append(Violation(c.name, c.unit, float(block[c.name][i]), why, int(bad.sum())))
                ok &= ~bad
        if n:
            self.last_active = bool(active[-1])
        return ok, violations

    def _sequence(self, c: Channel, v: np.ndarray, t_us: np.ndarray, active: np.ndarray,
                  ok: np.ndarray) -> tuple[np.ndarray, str]:
        """(samples that break monotonicity or the rise rate, each against the last accepted one before it; why the
        first of them did). An exposure-monotonic value also never rises while the device is inactive (between two
        inactive samples: a closed shutter delivers no dose)."""
        bad = np.zeros(len(v), bool)
        why = ""
        last = self._last.get(c.name)
        v, t_us, active, ok = v.tolist(), t_us.tolist(), active.tolist(), ok.tolist()  # fast scalar access
        for i in range(len(v)):  # ≤ 255 samples; in range samples only (the others are already rejected)
            if not ok[i]:
                continue
            if last is not None:
                v0, t0, active0 = last
                dt_s = max(0, t_us[i] - t0) / 1e6
                problem = ""
                if c.exposure_monotonic and active0 and active[i] and v[i] < v0 - MONOTONIC_EPS:
                    problem = f"fell from {v0:g} during an exposure"
                elif c.exposure_monotonic and not active0 and not active[i] and v[i] > v0 + MONOTONIC_EPS:
                    problem = f"rose from {v0:g} while the device was inactive"
                elif v[i] - v0 > c.max_rise_per_s * dt_s + MONOTONIC_EPS:
                    problem = f"rose from {v0:g} faster than {c.max_rise_per_s:g} {c.unit}/s of device time"
                if problem:
                    bad[i] = True
                    why = why or problem
                    continue
            last = (v[i], t_us[i], active[i])
        if last is not None:
            self._last[c.name] = last
        return bad, why


EXPECTED_IRRADIANCE_308_MW_CM2 = (MIN_EXPECTED_IRRADIANCE_MW_CM2, MAX_IRRADIANCE_MW_CM2)


def expected_irradiance_problem(value: object, plausible: tuple[float, float] = EXPECTED_IRRADIANCE_308_MW_CM2,
                                what: str = "a 308 nm handpiece") -> str:
    """"" if `value` (mW/cm²) is a plausible irradiance to expect an exposure at, else what is wrong, in words.
    `plausible` is the light's declared range (a driver's EXPECTED_IRRADIANCE_MW_CM2; for the 308 nm handpiece
    drivers/channels.py: 50–300). The one check of it: the light driver before it computes a backup time, and
    `devices check` before it records a check."""
    low, high = plausible
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"{value!r} is not a number of mW/cm²"
    if not low <= value <= high:
        return (f"{value:g} mW/cm² is outside the plausible {low:g}–{high:g} mW/cm² of {what} (a failing lamp or a "
                "wrong calibration)")
    return ""
