"""Emulated microneedling pen on a pty: stroke motor, depth servo, skin-load current, contact sensor, cartridge.

START runs the motor when armed and no fault is latched; skin contact is not needed to start (the clinician may start
in the air) but is reported, and losing it while needling (the tip had touched skin during this run) stops the motor
and latches CONTACT_LOST, unless `stop_on_contact_loss=False`. Messages: START accepted → ACK then STATUS(ACTIVE,
STARTED); the motor has spun down below `stopped_below_hz` → STATUS(IDLE, reason).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from drivers.emulators.base import Emulator, EmulatorState
from drivers.emulators.commands import Refused
from drivers.emulators.motor import PenModel, PenParams
from drivers.protocol import (
    FLAG_ACTIVE,
    FLAG_ARMED,
    FLAG_CONTACT,
    PEN_HEADER,
    PEN_SAMPLE,
    PenFault,
    PenParam,
    Refusal,
    State,
    StopReason,
    telemetry_payload,
)

DEPTH_MIN_MM, DEPTH_MAX_MM, DEPTH_STEP_MM = 0.0, 2.5, 0.05
STROKE_RATE_MIN_HZ, STROKE_RATE_MAX_HZ = 50.0, 150.0


@dataclass(frozen=True, slots=True)
class PenState(EmulatorState):
    """`EmulatorState` plus the pen's mechanics at the last sample."""

    running: bool  # drive on
    spinning_down: bool  # drive off, rotor still above stopped_below_hz
    depth_set_mm: float
    depth_mm: float
    stroke_rate_set_hz: float
    stroke_rate_hz: float
    motor_current_ma: float
    cartridge_strokes: int
    cartridge_wear_fraction: float
    jammed: bool
    started_at: float | None
    stopped_at: float | None  # monotonic time the rotor last fell below stopped_below_hz after a stop
    stopped_reason: StopReason | None


class PenEmulator(Emulator):
    """A motorised microneedling pen. Use as `with PenEmulator() as emu: open(emu.port)`."""

    kind = "needling"
    short_name = "pen"
    fault_bits = PenFault

    def __init__(
        self,
        *,
        pen: PenParams | None = None,
        depth_mm: float = 0.0,
        stroke_rate_hz: float = 100.0,
        stop_on_contact_loss: bool = True,
        model: str = "MN-150 microneedling pen (emulated)",
        firmware: str = "1.0.0-emu",
        serial_number: str = "MN150-EMU-0001",
        **kwargs: Any,
    ) -> None:
        super().__init__(serial_number=serial_number, **kwargs)
        self.pen_params = pen or PenParams()
        self.model = model
        self.firmware = firmware
        self.stop_on_contact_loss = stop_on_contact_loss
        self._pen = PenModel(self.pen_params, self.seed)
        self._depth_set_mm = depth_mm
        self._rate_set_hz = stroke_rate_hz
        self._drive_on = False
        self._spinning_down = False
        self._stop_reason = StopReason.COMMAND
        self._stop_text = ""
        self._touched_skin = False  # contact seen since START: from then on losing it is "contact lost"
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self._stopped_reason: StopReason | None = None

    # --- injectable faults --------------------------------------------------------------------------------------
    def _injectable(self) -> set[str]:
        return super()._injectable() | {"motor_jam", "replace_cartridge"}

    def motor_jam(self) -> None:
        """Jam the needle mechanism: the rotor stalls; it stays jammed until clear_faults_cause()."""
        with self._lock:
            self._injected("motor_jam")
            self._pen.jammed = True

    def replace_cartridge(self) -> None:
        """Fit a new cartridge: strokes back to 0, any jam cleared."""
        with self._lock:
            self._injected("replace_cartridge")
            self._pen.replace_cartridge()

    def _clear_causes(self, now: float) -> None:
        self._pen.jammed = False

    def _device_persisting(self, now: float) -> int:
        bits = PenFault.MOTOR_JAM if self._pen.jammed else 0
        if self._pen.over_current_detected():
            bits |= PenFault.OVER_CURRENT
        return bits

    # --- commands -----------------------------------------------------------------------------------------------
    def _set(self, param: int, value: float, now: float) -> None:
        if param == PenParam.DEPTH_MM:
            steps = (value - DEPTH_MIN_MM) / DEPTH_STEP_MM if math.isfinite(value) else -1.0
            if not DEPTH_MIN_MM <= value <= DEPTH_MAX_MM + 1e-4 or abs(steps - round(steps)) > 1e-3:
                raise Refused(
                    Refusal.OUT_OF_BOUNDS,
                    f"Depth {value:g} mm is not a {DEPTH_STEP_MM:g} mm step in {DEPTH_MIN_MM:g}–{DEPTH_MAX_MM:g} mm.",
                )
            self._depth_set_mm = round(steps) * DEPTH_STEP_MM
        elif param == PenParam.STROKE_RATE_HZ:
            if not STROKE_RATE_MIN_HZ <= value <= STROKE_RATE_MAX_HZ:
                raise Refused(
                    Refusal.OUT_OF_BOUNDS,
                    f"Stroke rate {value:g} Hz is outside {STROKE_RATE_MIN_HZ:g}–{STROKE_RATE_MAX_HZ:g} Hz.",
                )
            self._rate_set_hz = float(value)
        else:
            raise Refused(Refusal.UNKNOWN_COMMAND, f"Parameter {param} does not exist on this pen.")

    def _start(self, now: float) -> None:
        self._drive_on = True
        self._spinning_down = False
        self._touched_skin = self._contact
        self._started_at = now
        self._send_status(State.ACTIVE, StopReason.STARTED, "Motor starting.")

    def _halt(self, t: float, reason: StopReason, text: str) -> None:
        was_armed, self.armed = self.armed, False
        if self._drive_on:
            self._drive_on = False
            self._spinning_down = True
            self._stop_reason, self._stop_text = reason, text
        elif not self._spinning_down and was_armed:
            self._mark_stopped(t, reason, text)

    def _active(self) -> bool:
        return self._drive_on or self._spinning_down

    # --- physics, one sample at t -------------------------------------------------------------------------------
    def _sample(self, t: float) -> tuple:
        pen = self._pen
        r = pen.step(self.dt_s, self._drive_on, self._rate_set_hz, self._depth_set_mm, self._contact)
        if self._spinning_down and pen.stopped():
            self._spinning_down = False
            self._stopped_at, self._stopped_reason = t, self._stop_reason
            self._mark_stopped(t, self._stop_reason, self._stop_text)
        if pen.jam_detected():
            self._trip(PenFault.MOTOR_JAM, f"Motor jam: rotor stalled at {r.motor_current_ma:.0f} mA.", t)
        if pen.over_current_detected():
            self._trip(PenFault.OVER_CURRENT, f"Motor over-current: {r.motor_current_ma:.0f} mA.", t)
        if self._drive_on:
            if self._contact:
                self._touched_skin = True
            elif self._touched_skin and self.stop_on_contact_loss:
                self._trip(PenFault.CONTACT_LOST, "Skin contact lost while needling.", t)
        self._check_watchdog(t)
        flags = (FLAG_ACTIVE if self._active() else 0) | (FLAG_CONTACT if self._contact else 0)
        flags |= FLAG_ARMED if self.armed else 0
        return (
            round(self._depth_set_mm * 1000.0),
            min(65535, round(r.depth_mm * 1000.0)),
            min(65535, round(r.stroke_rate_hz * 100.0)),
            min(65535, round(r.motor_current_ma * 10.0)),
            flags,
            self.faults,
        )

    def _telemetry(self, t0_us: int, samples: list[tuple]) -> bytes:
        strokes = min(0xFFFFFFFF, int(self._pen.cartridge_strokes))
        header = np.array([(t0_us, self.period_us, len(samples), strokes)], PEN_HEADER)
        return telemetry_payload(header, np.array(samples, PEN_SAMPLE))

    # --- identity and snapshot ----------------------------------------------------------------------------------
    def _identity(self, now: float) -> dict[str, Any]:
        return {
            "model": self.model,
            "serial_number": self.serial_number,
            "firmware": self.firmware,
            "cartridge_strokes": int(self._pen.cartridge_strokes),
            "needles": self.pen_params.needles,
            "cartridge_life_strokes": int(self.pen_params.cartridge_life_strokes),
            "depth_range_mm": [DEPTH_MIN_MM, DEPTH_MAX_MM, DEPTH_STEP_MM],
            "stroke_rate_range_hz": [STROKE_RATE_MIN_HZ, STROKE_RATE_MAX_HZ],
        }

    def _snapshot(self, now: float) -> PenState:
        pen = self._pen
        return PenState(
            **self._base_fields(now),
            running=self._drive_on,
            spinning_down=self._spinning_down,
            depth_set_mm=self._depth_set_mm,
            depth_mm=pen.depth_mm,
            stroke_rate_set_hz=self._rate_set_hz,
            stroke_rate_hz=pen.stroke_rate_hz,
            motor_current_ma=pen.motor_current_ma,
            cartridge_strokes=int(pen.cartridge_strokes),
            cartridge_wear_fraction=pen.wear_fraction(),
            jammed=pen.jammed,
            started_at=self._started_at,
            stopped_at=self._stopped_at,
            stopped_reason=self._stopped_reason,
        )

    def state(self) -> PenState:
        return super().state()
