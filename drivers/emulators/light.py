"""Emulated 308 nm excimer handpiece: integrating dosimetry behind a shutter, on a pty.

The device integrates dose = Σ irradiance × dt over its own samples while the shutter is open and closes the shutter
itself when the dose reaches the target. Its firmware anticipates the shutter's own latency from the irradiance it
measures, so the exposure ends within half a sample's dose of the target, whatever the lamp's age or warm-up.
Every other way out (STOP, watchdog, contact lost, over-temperature, lamp failure, disarm) closes the shutter after
the modelled close latency, counted from the moment the device decided to close.

Messages: START accepted → ACK then STATUS(ACTIVE, STARTED) before any light reaches the window (the emission
indicator lights first); the shutter fully closed → STATUS(IDLE, reason), sent only once irradiance is zero.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from drivers.emulators.base import Emulator, EmulatorState
from drivers.emulators.commands import Refused
from drivers.emulators.lamp import LampModel, LampParams, Shutter
from drivers.protocol import (
    FLAG_ACTIVE,
    FLAG_ARMED,
    FLAG_CONTACT,
    LIGHT_DOSE_SCALE,
    LIGHT_HEADER,
    LIGHT_SAMPLE,
    LightFault,
    LightParam,
    Refusal,
    State,
    StopReason,
    telemetry_payload,
)

TARGET_DOSE_MIN_MJ_CM2 = 1.0
TARGET_DOSE_MAX_MJ_CM2 = 5000.0
BACKUP_TIME_MIN_S, BACKUP_TIME_MAX_S = 0.01, 3600.0


@dataclass(frozen=True, slots=True)
class LightState(EmulatorState):
    """`EmulatorState` plus the light's physics, as the device sees it at the last sample."""

    shutter: str  # closed / opening / open / closing
    shutter_open: bool  # shutter not fully closed (light may be at the window)
    emitting: bool  # irradiance > 0 at the last sample
    irradiance_mw_cm2: float
    dose_mj_cm2: float  # the current (or last) exposure, as the device's sensor integrated it
    true_dose_mj_cm2: float  # what really reached the window (differs from dose_mj_cm2 under `sensor_low`)
    backup_time_s: float | None  # the exposure's backup time as set by the host (None: none set)
    target_dose_mj_cm2: float | None
    lamp_temp_c: float
    lamp_hours: float
    lamp_output_fraction: float  # warm-up × ageing, without noise
    lamp_failed: bool
    shutter_opened_at: float | None  # monotonic time light first reached the window
    shutter_closed_at: float | None  # monotonic time irradiance last reached zero
    shutter_closed_reason: StopReason | None


class LightEmulator(Emulator):
    """A 308 nm excimer phototherapy handpiece. Use as `with LightEmulator() as emu: open(emu.port)`."""

    kind = "light"
    short_name = "light"
    fault_bits = LightFault

    def __init__(
        self,
        *,
        lamp: LampParams | None = None,
        model: str = "UVB-308 excimer handpiece (emulated)",
        firmware: str = "1.0.0-emu",
        serial_number: str = "UVB308-EMU-0001",
        **kwargs: Any,
    ) -> None:
        super().__init__(serial_number=serial_number, **kwargs)
        self.lamp_params = lamp or LampParams()
        self.model = model
        self.firmware = firmware
        self._lamp = LampModel(self.lamp_params, self._t_start, self.seed)
        self._shutter = Shutter.CLOSED
        self._shutter_due = 0.0  # when an OPENING/CLOSING shutter finishes moving
        self._close_reason = StopReason.COMMAND
        self._close_text = ""
        self._target_mj_cm2: float | None = None
        self._dose_mj_cm2 = 0.0
        self._irradiance_mw_cm2 = 0.0
        self._opened_at: float | None = None
        self._closed_at: float | None = None
        self._closed_reason: StopReason | None = None
        self._backup_time_s: float | None = None  # the exposure also ends this long after the shutter opened
        self._backup_timer_broken = False
        self._sensor_fraction = 1.0  # the internal sensor reads this fraction of the true irradiance
        self._true_dose_mj_cm2 = 0.0  # what really reached the skin in the current exposure
        self._glitch_samples = 0  # samples still to report with an impossible lamp temperature

    # --- injectable faults --------------------------------------------------------------------------------------
    def _injectable(self) -> set[str]:
        return super()._injectable() | {"over_temperature", "lamp_failure", "sensor_low", "backup_timer_failure",
                                         "sensor_glitch"}

    def sensor_glitch(self, samples: int = 1) -> None:
        """The next `samples` samples report the lamp at −327.68 °C (the i16 minimum: a broken temperature sensor)."""
        with self._lock:
            self._injected("sensor_glitch")
            self._glitch_samples = max(0, int(samples))

    def sensor_low(self, fraction: float = 0.5) -> None:
        """The internal irradiance sensor reads `fraction` of the true irradiance (1.0 repairs it): the device's
        integrated dose lags the true dose, and only the backup time bounds the exposure."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be in 0–1, not {fraction}")
        with self._lock:
            self._injected("sensor_low")
            self._sensor_fraction = float(fraction)

    def backup_timer_failure(self, broken: bool = True) -> None:
        """The device's backup timer stops working (a trainer fault for the host's `backup_time` interlock)."""
        with self._lock:
            self._injected("backup_timer_failure")
            self._backup_timer_broken = broken

    def radiometer_reading_mw_cm2(self) -> float:
        """What a calibrated hand-held radiometer held at the window reads now: the lamp's true output with the
        shutter open (the trainer's radiometer check; `main.py devices check --simulate`)."""
        with self._lock:
            now = self._advance_to(time.monotonic())
            lamp = self._lamp
            if lamp.failed:
                return 0.0
            # the lamp's own output without the sensor noise (a radiometer averages over its reading time)
            return self.lamp_params.nominal_irradiance_mw_cm2 * lamp.warmup_fraction(now) * lamp.ageing_fraction(now)

    def over_temperature(self, temp_c: float | None = None) -> None:
        """Heat the lamp to temp_c (default 5 °C over the limit); it cools by itself, or clear_faults_cause()."""
        with self._lock:
            self._injected("over_temperature")
            self._lamp.temp_c = self.lamp_params.over_temperature_c + 5.0 if temp_c is None else temp_c

    def lamp_failure(self) -> None:
        """The lamp goes out: no output until clear_faults_cause() fits a new one (which warms up again)."""
        with self._lock:
            self._injected("lamp_failure")
            self._lamp.failed = True

    def _clear_causes(self, now: float) -> None:
        if self._lamp.failed:
            self._lamp.replace(now)
        self._lamp.cool_down()

    def _device_persisting(self, now: float) -> int:
        bits = 0
        if self._lamp.failed:
            bits |= LightFault.LAMP_FAILURE
        if self._lamp.still_hot():
            bits |= LightFault.OVER_TEMPERATURE
        return bits

    # --- commands -----------------------------------------------------------------------------------------------
    def _set(self, param: int, value: float, now: float) -> None:
        if param == LightParam.BACKUP_TIME_S:
            if not BACKUP_TIME_MIN_S <= value <= BACKUP_TIME_MAX_S:  # also refuses NaN
                raise Refused(Refusal.OUT_OF_BOUNDS, f"Backup time {value:g} s is outside "
                              f"{BACKUP_TIME_MIN_S:g}–{BACKUP_TIME_MAX_S:g} s.")
            if self._active():
                raise Refused(Refusal.BAD_STATE, "The backup time cannot change during an exposure.")
            self._backup_time_s = float(value)
            return
        if param != LightParam.TARGET_DOSE_MJ_CM2:
            raise Refused(Refusal.UNKNOWN_COMMAND, f"Parameter {param} does not exist on this light.")
        if not TARGET_DOSE_MIN_MJ_CM2 <= value <= TARGET_DOSE_MAX_MJ_CM2:  # also refuses NaN
            raise Refused(
                Refusal.OUT_OF_BOUNDS,
                f"Target dose {value:g} mJ/cm² is outside {TARGET_DOSE_MIN_MJ_CM2:g}–{TARGET_DOSE_MAX_MJ_CM2:g} mJ/cm².",
            )
        if self._active():
            raise Refused(Refusal.BAD_STATE, "The target dose cannot change during an exposure.")
        self._target_mj_cm2 = float(value)

    def _start(self, now: float) -> None:
        if self._target_mj_cm2 is None:
            raise Refused(Refusal.NO_TARGET, "No target dose set: SET TARGET_DOSE_MJ_CM2 first.")
        if not self._contact:
            raise Refused(Refusal.NO_CONTACT, "No skin contact: place the handpiece on the skin.")
        self._dose_mj_cm2 = 0.0
        self._true_dose_mj_cm2 = 0.0
        self._shutter = Shutter.OPENING
        self._shutter_due = now + self.lamp_params.shutter_open_latency_s
        self._send_status(State.ACTIVE, StopReason.STARTED, "Shutter opening.")

    def _halt(self, t: float, reason: StopReason, text: str) -> None:
        was_armed, self.armed = self.armed, False
        if self._shutter is Shutter.OPEN:
            self._shutter = Shutter.CLOSING
            self._shutter_due = t + self.lamp_params.shutter_close_latency_s
            self._close_reason, self._close_text = reason, text
        elif self._shutter is Shutter.OPENING:  # no light reached the window yet: the blade simply stays shut
            self._close_now(t, reason, text)
        elif self._shutter is Shutter.CLOSED and was_armed:
            self._mark_stopped(t, reason, text)

    def _active(self) -> bool:
        return self._shutter is not Shutter.CLOSED

    # --- physics, one sample at t -------------------------------------------------------------------------------
    def _power_on(self, t: float) -> None:
        self._lamp.t_power_on = self._lamp.t_warmup_from = t

    def _sample(self, t: float) -> tuple:
        if self._shutter is Shutter.OPENING and t >= self._shutter_due:
            self._shutter = Shutter.OPEN
            self._opened_at = self._shutter_due
        elif self._shutter is Shutter.CLOSING and t >= self._shutter_due:
            self._close_now(self._shutter_due, self._close_reason, self._close_text)
        output = self._lamp.output_mw_cm2(t)  # always drawn, so the noise sequence does not depend on timing
        lit = self._shutter is Shutter.OPEN or self._shutter is Shutter.CLOSING
        true_irradiance = output if lit else 0.0
        irradiance = true_irradiance * self._sensor_fraction  # what the device measures and integrates
        dose_before = self._dose_mj_cm2
        if lit:
            self._dose_mj_cm2 += irradiance * self.dt_s
            self._true_dose_mj_cm2 += true_irradiance * self.dt_s
        temp_c = self._lamp.step_temperature(self.dt_s, lit)
        self._irradiance_mw_cm2 = irradiance
        target = self._target_mj_cm2
        if self._shutter is Shutter.OPEN and target is not None and dose_before < target:
            if self._dose_mj_cm2 >= target - irradiance * self.dt_s / 2:
                self._close_now(t + self._real_period_s, StopReason.DOSE_REACHED, "Target dose reached.")
        backup = self._backup_time_s
        if (self._shutter is Shutter.OPEN and backup is not None and not self._backup_timer_broken
                and self._opened_at is not None and t - self._opened_at >= backup):
            self._trip(LightFault.BACKUP_TIME, f"Backup time of {backup:g} s reached at {self._dose_mj_cm2:.1f} "
                       "mJ/cm², before the target dose: is the irradiance sensor reading low?", t)
        if self._lamp.failed:
            self._trip(LightFault.LAMP_FAILURE, "Lamp failure: no output from the lamp.", t)
        if self._lamp.too_hot():
            limit = self.lamp_params.over_temperature_c
            self._trip(LightFault.OVER_TEMPERATURE, f"Lamp at {temp_c:.1f} °C, over the {limit:g} °C limit.", t)
        if not self._contact and self._active():
            self._trip(LightFault.CONTACT_LOST, "Skin contact lost during the exposure.", t)
        self._check_watchdog(t)
        flags = (FLAG_ACTIVE if self._shutter is not Shutter.CLOSED else 0) | (FLAG_CONTACT if self._contact else 0)
        flags |= FLAG_ARMED if self.armed else 0
        return (
            min(65535, round(irradiance * 100.0)),
            min(0xFFFFFFFF, round(self._dose_mj_cm2 * LIGHT_DOSE_SCALE)),
            max(-32768, min(32767, round(temp_c * 100.0))) if not self._glitch() else -32768,
            flags,
            self.faults,
        )

    def _glitch(self) -> bool:
        if self._glitch_samples <= 0:
            return False
        self._glitch_samples -= 1
        return True

    def _close_now(self, t_closed: float, reason: StopReason, text: str) -> None:
        """The shutter is fully closed at t_closed: no light at the window from then on."""
        self.armed = False
        self._shutter = Shutter.CLOSED
        self._closed_at = t_closed
        self._closed_reason = reason
        self._mark_stopped(t_closed, reason, text)

    def _telemetry(self, t0_us: int, samples: list[tuple]) -> bytes:
        target = self._target_mj_cm2 or 0.0
        header = np.array([(t0_us, self.period_us, len(samples), round(target * LIGHT_DOSE_SCALE))], LIGHT_HEADER)
        return telemetry_payload(header, np.array(samples, LIGHT_SAMPLE))

    # --- identity and snapshot ----------------------------------------------------------------------------------
    def _identity(self, now: float) -> dict[str, Any]:
        p = self.lamp_params
        return {
            "model": self.model,
            "serial_number": self.serial_number,
            "firmware": self.firmware,
            "lamp_hours": round(self._lamp.lamp_hours(now), 3),
            "calibration": {"factor": p.calibration_factor, "date": p.calibration_date,
                            "irradiance_mw_cm2": round(self._calibrated_irradiance_mw_cm2(), 2)},
            "nominal_irradiance_mw_cm2": p.nominal_irradiance_mw_cm2,
            "target_dose_range_mj_cm2": [TARGET_DOSE_MIN_MJ_CM2, TARGET_DOSE_MAX_MJ_CM2],
        }

    def _calibrated_irradiance_mw_cm2(self) -> float:
        """The irradiance measured at the last calibration: the warm lamp's output at the hours it started with."""
        p = self.lamp_params
        if p.calibrated_irradiance_mw_cm2 is not None:
            return p.calibrated_irradiance_mw_cm2
        return p.nominal_irradiance_mw_cm2 * (1.0 - p.ageing_per_1000_h) ** (p.lamp_hours / 1000.0)

    def _snapshot(self, now: float) -> LightState:
        return LightState(
            **self._base_fields(now),
            shutter=self._shutter.value,
            shutter_open=self._shutter is not Shutter.CLOSED,
            emitting=self._irradiance_mw_cm2 > 0.0,
            irradiance_mw_cm2=self._irradiance_mw_cm2,
            dose_mj_cm2=self._dose_mj_cm2,
            true_dose_mj_cm2=self._true_dose_mj_cm2,
            backup_time_s=self._backup_time_s,
            target_dose_mj_cm2=self._target_mj_cm2,
            lamp_temp_c=self._lamp.temp_c,
            lamp_hours=self._lamp.lamp_hours(now),
            lamp_output_fraction=self._lamp.warmup_fraction(now) * self._lamp.ageing_fraction(now),
            lamp_failed=self._lamp.failed,
            shutter_opened_at=self._opened_at,
            shutter_closed_at=self._closed_at,
            shutter_closed_reason=self._closed_reason,
        )

    def state(self) -> LightState:
        return super().state()
