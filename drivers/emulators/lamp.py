"""Physical model of the 308 nm excimer handpiece: lamp output, lamp temperature and the shutter.

Output = nominal × warm-up(t) × ageing(lamp hours) × (1 + noise). The warm-up is first order from a cold fraction to
full output; ageing compounds a fixed loss per 1000 lamp hours (UVB lamps lose power steadily, CLINICAL.md). The lamp
temperature relaxes towards one equilibrium with the shutter closed and a hotter one with it open (heat reflected back
into the housing), so long exposures drive it towards the over-temperature limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np


@dataclass(frozen=True, slots=True)
class LampParams:
    """The lamp and shutter constants; every one can be overridden per emulator."""

    nominal_irradiance_mw_cm2: float = 100.0  # a warm, new excimer lamp at the handpiece window
    warmup_s: float = 3.0  # time from power-on to 99.5 % of full output (real lamps: tens of seconds to minutes)
    cold_output_fraction: float = 0.3  # output fraction right after power-on
    lamp_hours: float = 350.0  # hours on the lamp when the emulator starts; counts up while it runs
    ageing_per_1000_h: float = 0.12  # fraction of output lost per 1000 lamp hours, compounded
    noise_fraction: float = 0.01  # relative rms irradiance noise per sample
    ambient_c: float = 24.0  # lamp temperature at power-on
    idle_rise_c: float = 6.0  # equilibrium rise above ambient, lamp on, shutter closed
    open_rise_c: float = 28.0  # equilibrium rise above ambient while the shutter is open
    thermal_tau_s: float = 60.0  # lamp housing thermal time constant
    over_temperature_c: float = 45.0  # the device trips above this
    temperature_hysteresis_c: float = 3.0  # RESET is refused until the lamp is this far below the limit
    shutter_open_latency_s: float = 0.005  # from START accepted to light at the window
    shutter_close_latency_s: float = 0.005  # from the close decision to irradiance reaching zero
    calibration_factor: float = 1.0  # radiometer factor applied to the internal sensor (reported in IDENTITY)
    calibration_date: str = "2026-11-02"
    calibrated_irradiance_mw_cm2: float | None = None  # radiometer reading at calibration (None: the warm output then)


class Shutter(Enum):
    CLOSED = "closed"
    OPENING = "opening"  # START accepted, light not yet at the window
    OPEN = "open"
    CLOSING = "closing"  # close decided, light still at the window until the blade has crossed


class LampModel:
    """Lamp output and temperature, stepped one sample at a time by the emulator (which holds the lock)."""

    _NOISE_BLOCK = 4096

    def __init__(self, params: LampParams, t_power_on: float, seed: int | None) -> None:
        self.params = params
        self.t_power_on = t_power_on
        self.t_warmup_from = t_power_on  # restarts when a failed lamp is replaced
        self.failed = False
        self.temp_c = params.ambient_c
        self._rng = np.random.default_rng(seed)
        self._noise: list[float] = []
        self._tau_warm_s = max(params.warmup_s, 1e-9) / 5.3  # 1 - 0.7·e^-5.3 ≈ 0.9965 at warmup_s

    def lamp_hours(self, t: float) -> float:
        return self.params.lamp_hours + max(0.0, t - self.t_power_on) / 3600.0

    def ageing_fraction(self, t: float) -> float:
        return (1.0 - self.params.ageing_per_1000_h) ** (self.lamp_hours(t) / 1000.0)

    def warmup_fraction(self, t: float) -> float:
        cold = self.params.cold_output_fraction
        return 1.0 - (1.0 - cold) * math.exp(-max(0.0, t - self.t_warmup_from) / self._tau_warm_s)

    def output_mw_cm2(self, t: float) -> float:
        """Irradiance the lamp would put at the window with the shutter open (0 once failed)."""
        if not self._noise:
            self._noise = self._rng.normal(0.0, self.params.noise_fraction, self._NOISE_BLOCK).tolist()
        noise = self._noise.pop()
        if self.failed:
            return 0.0
        p = self.params
        return max(0.0, p.nominal_irradiance_mw_cm2 * self.warmup_fraction(t) * self.ageing_fraction(t) * (1 + noise))

    def step_temperature(self, dt_s: float, shutter_open: bool) -> float:
        p = self.params
        rise = p.open_rise_c if shutter_open else p.idle_rise_c
        if self.failed:
            rise = 0.0
        equilibrium_c = p.ambient_c + rise
        self.temp_c += (equilibrium_c - self.temp_c) * (1.0 - math.exp(-dt_s / p.thermal_tau_s))
        return self.temp_c

    def too_hot(self) -> bool:
        return self.temp_c > self.params.over_temperature_c

    def still_hot(self) -> bool:
        return self.temp_c > self.params.over_temperature_c - self.params.temperature_hysteresis_c

    def replace(self, t: float) -> None:
        """A new lamp (clears a lamp failure): it warms up again from cold output."""
        self.failed = False
        self.t_warmup_from = t

    def cool_down(self) -> None:
        """Bring an overheated lamp back to its idle equilibrium (a test shortcut for minutes of cooling)."""
        p = self.params
        self.temp_c = min(self.temp_c, p.ambient_c + p.idle_rise_c)
