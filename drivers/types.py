"""Plain records a driver uses to declare itself and to report what its device is. No I/O here."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

KINDS = ("light", "needling")


@dataclass(frozen=True, slots=True)
class Channel:
    """One telemetry field: its name in the block dtype, its unit, and a sentence for people."""

    name: str
    unit: str  # "mW/cm²", "mJ/cm²", "°C", "mm", "Hz", "mA", "bool", "bits", "count"
    description: str


@dataclass(frozen=True, slots=True)
class Bound:
    """The host-side bound of a settable parameter: checked before a byte is sent."""

    name: str
    unit: str
    minimum: float
    maximum: float
    step: float = 0.0  # 0: any value in range; else the value must be a multiple of step (from minimum)

    def check(self, value: float) -> float:
        """Return value as float, or raise BoundsError saying what is allowed."""
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise BoundsError(f"{self.name} must be a number in {self.unit}, not {value!r}.") from None
        if not math.isfinite(v) or v < self.minimum or v > self.maximum:
            raise BoundsError(
                f"{self.name} = {value} {self.unit} is outside the device's range "
                f"{self.minimum:g}–{self.maximum:g} {self.unit}."
            )
        if self.step:
            k = (v - self.minimum) / self.step
            if abs(k - round(k)) > 1e-6:
                raise BoundsError(f"{self.name} = {value} {self.unit} is not a multiple of {self.step:g} {self.unit}.")
        return v


class BoundsError(ValueError):
    """A command value outside the declared bounds; nothing was sent."""


@dataclass(frozen=True, slots=True)
class DriverInfo:
    """What a driver class declares about itself (before any device is connected)."""

    name: str  # entry-point name, e.g. "light-uvb308"
    kind: str  # one of KINDS
    version: str
    description: str
    nominal_rate_hz: float
    channels: tuple[Channel, ...]
    bounds: tuple[Bound, ...]


@dataclass(frozen=True, slots=True)
class Identity:
    """What a connected device reported about itself (the IDENTITY message)."""

    model: str
    serial_number: str
    firmware: str
    protocol_version: int
    extra: dict[str, Any] = field(default_factory=dict)  # lamp_hours, cartridge_strokes, calibration, ...

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Identity:
        known = {"model", "serial_number", "firmware", "protocol_version"}
        return cls(
            model=str(d.get("model", "?")),
            serial_number=str(d.get("serial_number", "?")),
            firmware=str(d.get("firmware", "?")),
            protocol_version=int(d.get("protocol_version", 0)),
            extra={k: v for k, v in d.items() if k not in known},
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "serial_number": self.serial_number,
            "firmware": self.firmware,
            "protocol_version": self.protocol_version,
            **self.extra,
        }
