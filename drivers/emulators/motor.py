"""Physical model of the microneedling pen: stroke motor, depth servo, motor current, cartridge wear, jam.

The motor follows its drive first order (spin-up `motor_tau_s`, active braking `brake_tau_s`); the depth stop follows
its set point first order (`depth_tau_s`). Motor current = standby + a friction term ∝ stroke rate + a skin-load term
while the tip is on skin, which grows with depth and rate and with cartridge wear (dull needles push harder). A jam
stalls the motor within a few ms while the current climbs to the stall current; the firmware detects it from a high
current with the rotor stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class PenParams:
    """The pen's constants; every one can be overridden per emulator."""

    motor_tau_s: float = 0.04  # spin-up time constant
    brake_tau_s: float = 0.01  # active braking when the drive is cut
    jam_tau_s: float = 0.003  # how fast a jammed rotor stops
    depth_tau_s: float = 0.03  # depth servo time constant
    stopped_below_hz: float = 1.0  # the motor counts as stopped below this stroke rate
    standby_current_ma: float = 3.0  # electronics only, drive off
    idle_current_ma: float = 35.0  # drive on, rotor turning, no load
    friction_ma_per_hz: float = 1.2  # no-load current per Hz of stroke rate
    contact_load_ma: float = 20.0  # tip on skin, needles at 0 mm, at 100 Hz
    load_ma_per_mm: float = 80.0  # skin load per mm of depth at 100 Hz
    wear_load_gain: float = 0.5  # the skin load is this much higher at the end of the cartridge's life
    cartridge_life_strokes: float = 250_000.0
    stall_current_ma: float = 900.0
    current_tau_s: float = 0.002  # winding electrical time constant
    jam_current_ma: float = 600.0  # jam = current above this with the rotor below `jam_rate_hz`...
    jam_rate_hz: float = 10.0
    jam_detect_s: float = 0.01  # ...for this long
    over_current_ma: float = 700.0  # over-current = above this for `over_current_detect_s`
    over_current_detect_s: float = 0.02
    rate_noise_hz: float = 0.3  # rms, measured stroke rate
    depth_noise_mm: float = 0.003  # rms, measured depth
    current_noise_ma: float = 2.0  # rms, measured current
    needles: int = 12
    cartridge_strokes: int = 0  # strokes already made by the fitted cartridge


@dataclass(slots=True)
class PenReading:
    """One sample of the pen's sensors."""

    depth_mm: float
    stroke_rate_hz: float
    motor_current_ma: float


class PenModel:
    """Pen mechanics stepped one sample at a time by the emulator (which holds the lock)."""

    _NOISE_BLOCK = 4096

    def __init__(self, params: PenParams, seed: int | None) -> None:
        self.params = params
        self.stroke_rate_hz = 0.0
        self.depth_mm = 0.0
        self.motor_current_ma = params.standby_current_ma
        self.cartridge_strokes = float(params.cartridge_strokes)
        self.jammed = False
        self.jam_for_s = 0.0  # how long the jam signature has been seen
        self.over_current_for_s = 0.0
        self._rng = np.random.default_rng(seed)
        self._noise: list[list[float]] = []

    def wear_fraction(self) -> float:
        return min(1.0, self.cartridge_strokes / self.params.cartridge_life_strokes)

    def step(self, dt_s: float, drive_on: bool, rate_set_hz: float, depth_set_mm: float, contact: bool) -> PenReading:
        p = self.params
        target_hz = rate_set_hz if drive_on and not self.jammed else 0.0
        if self.jammed:
            tau = p.jam_tau_s
        else:
            tau = p.motor_tau_s if target_hz > self.stroke_rate_hz else p.brake_tau_s
        self.stroke_rate_hz += (target_hz - self.stroke_rate_hz) * (1.0 - math.exp(-dt_s / tau))
        if self.stroke_rate_hz < 1e-3:
            self.stroke_rate_hz = 0.0
        self.depth_mm += (depth_set_mm - self.depth_mm) * (1.0 - math.exp(-dt_s / p.depth_tau_s))
        self.cartridge_strokes += self.stroke_rate_hz * dt_s
        if drive_on and self.jammed:
            load_ma = p.stall_current_ma
        elif drive_on or self.stroke_rate_hz > p.stopped_below_hz:
            load_ma = p.idle_current_ma + p.friction_ma_per_hz * self.stroke_rate_hz
            if contact:
                skin_ma = (p.contact_load_ma + p.load_ma_per_mm * self.depth_mm) * self.stroke_rate_hz / 100.0
                load_ma += skin_ma * (1.0 + p.wear_load_gain * self.wear_fraction())
        else:
            load_ma = p.standby_current_ma
        self.motor_current_ma += (load_ma - self.motor_current_ma) * (1.0 - math.exp(-dt_s / p.current_tau_s))
        self._update_detectors(dt_s, drive_on)
        if not self._noise:
            self._noise = self._rng.normal(0.0, 1.0, (self._NOISE_BLOCK, 3)).tolist()
        n_rate, n_depth, n_current = self._noise.pop()
        rate_hz = self.stroke_rate_hz + p.rate_noise_hz * n_rate if self.stroke_rate_hz > 0 else 0.0
        return PenReading(
            depth_mm=max(0.0, self.depth_mm + p.depth_noise_mm * n_depth),
            stroke_rate_hz=max(0.0, rate_hz),
            motor_current_ma=max(0.0, self.motor_current_ma + p.current_noise_ma * n_current),
        )

    def _update_detectors(self, dt_s: float, drive_on: bool) -> None:
        p = self.params
        stalled = drive_on and self.motor_current_ma > p.jam_current_ma and self.stroke_rate_hz < p.jam_rate_hz
        self.jam_for_s = self.jam_for_s + dt_s if stalled else 0.0
        over = self.motor_current_ma > p.over_current_ma
        self.over_current_for_s = self.over_current_for_s + dt_s if over else 0.0

    def jam_detected(self) -> bool:
        return self.jam_for_s >= self.params.jam_detect_s

    def over_current_detected(self) -> bool:
        return self.over_current_for_s >= self.params.over_current_detect_s

    def stopped(self) -> bool:
        return self.stroke_rate_hz < self.params.stopped_below_hz

    def replace_cartridge(self) -> None:
        self.cartridge_strokes = 0.0
        self.jammed = False
