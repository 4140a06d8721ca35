"""Plain records a driver uses to declare itself and to report what its device is. No I/O here."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

KINDS = ("light", "needling")


@dataclass(frozen=True, slots=True)
class Wire:
    """Where a channel's value travels in a TELEMETRY frame (docs/protocol.md): a field of the frame's header (one
    value for every sample) or of each sample, in wire units. The value is `raw / scale`, or, for a `flag`, whether
    that bit of the raw field is set (0 or 1)."""

    field: str
    scale: float = 1.0  # wire units per channel unit (e.g. 100 for 0.01 mW/cm² on the wire)
    flag: int = 0  # a bit mask: the channel is 1 where (raw & flag) != 0
    header: bool = False  # the field is in the frame header, not in each sample


@dataclass(frozen=True, slots=True)
class Channel:
    """One telemetry field: its name in the block dtype, its unit, a sentence for people, and what is plausible.

    A decoded sample outside [minimum, maximum] is implausible (a CRC-valid frame is only well-formed, not true).
    `exposure_monotonic`: the value never falls while the device stays active (it may restart when an exposure
    starts), never rises while it stays inactive (between two inactive samples), and never rises faster than `max_rise_per_s` (per second of *device* time; inf: no rate bound).
    """

    name: str
    unit: str  # "mW/cm²", "mJ/cm²", "°C", "mm", "Hz", "mA", "bool", "bits", "count"
    description: str
    minimum: float = -math.inf
    maximum: float = math.inf
    exposure_monotonic: bool = False
    max_rise_per_s: float = math.inf
    wire: Wire | None = None  # where it travels on the wire (None: set by the host, as t_host_s, t_device_us, seq)

    @property
    def checked(self) -> bool:
        """True if this channel declares anything to check."""
        return (self.minimum > -math.inf or self.maximum < math.inf or self.exposure_monotonic
                or self.max_rise_per_s < math.inf)


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
    # What a device must say in its IDENTITY to be driven by this driver (checked on every connect).
    model_prefixes: tuple[str, ...] = ()  # the model must start with one of these; () accepts any model
    protocol_versions: tuple[int, ...] = ()  # the wire protocol versions it speaks; () speaks none (refuses all)

    def identity_problem(self, ident: Identity) -> str:
        """'' if `ident` is a device this driver may drive, else what is wrong, in words."""
        kind = ident.extra.get("kind")
        problems = []
        if kind != self.kind:
            problems.append(f"it says it is {kind_words(kind)}, not {kind_words(self.kind)}" if kind is not None
                            else f"it does not say it is {kind_words(self.kind)}")
        if self.model_prefixes and not ident.model.startswith(self.model_prefixes):
            problems.append(f"its model {ident.model!r} is not one of {', '.join(self.model_prefixes)}")
        if ident.protocol_version not in self.protocol_versions:
            want = ", ".join(str(v) for v in self.protocol_versions)
            problems.append(f"it speaks protocol version {ident.protocol_text()}, this driver speaks {want}")
        return "; ".join(problems)


KIND_WORDS = {"light": "a UV light", "needling": "a microneedling pen"}  # a driver's kind, in words for a message


def kind_words(kind: object) -> str:
    """`a UV light`, `a microneedling pen`, or `a 'x' device` for a kind no driver here has."""
    return KIND_WORDS.get(str(kind), f"a {kind!r} device")


@dataclass(frozen=True, slots=True)
class Identity:
    """What a connected device reported about itself (the IDENTITY message)."""

    model: str
    serial_number: str
    firmware: str
    protocol_version: int
    extra: dict[str, Any] = field(default_factory=dict)  # lamp_hours, cartridge_strokes, calibration, ...
    protocol_version_raw: Any = None  # what the device sent when it was not a whole number (then the version is 0)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Identity:
        known = {"model", "serial_number", "firmware", "protocol_version"}
        return cls(
            model=str(d.get("model", "?")),
            serial_number=str(d.get("serial_number", "?")),
            firmware=str(d.get("firmware", "?")),
            protocol_version=_int_or_zero(d.get("protocol_version", 0)),
            extra={k: v for k, v in d.items() if k not in known},
            protocol_version_raw=None if _int_or_zero(raw := d.get("protocol_version", 0)) == raw and not
            isinstance(raw, bool) else raw,
        )

    def protocol_text(self) -> str:
        """The protocol version as the device sent it, for a message: `1`, or `'2' (not a whole number)`."""
        if self.protocol_version_raw is None:
            return str(self.protocol_version)
        return f"{self.protocol_version_raw!r} (not a whole number)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "serial_number": self.serial_number,
            "firmware": self.firmware,
            "protocol_version": self.protocol_version,
            **self.extra,
        }


def _int_or_zero(value: Any) -> int:
    """A protocol version from a device's JSON: an int, or 0 (unknown) for anything else (never an exception)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return value
