"""What the application may ask of a device, one small interface per device kind (python-microscope's idea).

The session, the safety monitor, the summary and the window use these, never a concrete driver: `Device` for what
every device does (connect, arm, start, stop, stop at once, inhibit starts, reset faults, status, fault names, the declared channels
and the one channel whose nonzero value means the device is active), `LightSource` and `NeedlingPen` for the typed
setters of each kind. A driver declares its kind in `INFO.kind` and subclasses the interface of that kind
(`KIND_INTERFACES`; discovery refuses a driver that does not). `drivers.base.SerialDevice` implements everything of
`Device` for a device speaking the Cicatrix wire protocol; a driver adds its declarations and typed setters.

Bounds are checked before anything is sent (`drivers.types.Bound.check`, in the base); a typed setter returns the
value sent (a float) and raises BoundsError (nothing sent), NotConnected, CommandRefused or CommandTimeout.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from drivers.types import Channel, DriverInfo, Identity

__all__ = ["KIND_INTERFACES", "Device", "LightSource", "NeedlingPen", "interface_problem"]


class Device(abc.ABC):
    """One device of a treatment. Thread-safe: any method may be called from any thread."""

    INFO: ClassVar[DriverInfo]
    # The telemetry channel whose nonzero value means the device is active (emitting / needling): what the safety
    # monitor, the session and the window watch. A "bool" channel declared in INFO.channels.
    active_channel: ClassVar[str]
    name: str

    @property
    def kind(self) -> str:
        """The device kind, as declared (`INFO.kind`: "light" or "needling"); roles come from it, never a name."""
        return self.INFO.kind

    @property
    def channels(self) -> tuple[Channel, ...]:
        """The declared telemetry channels (units, plausible ranges), in block-field order."""
        return self.INFO.channels

    @property
    @abc.abstractmethod
    def connected(self) -> bool:
        """True while the link is up (the port open)."""

    @abc.abstractmethod
    def connect(self) -> Identity:
        """Open the link, make the device safe (STOP, ARM 0) before anything else, identify it; raises
        NotConnected / WrongDevice in words."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop the device if possible, then release the link."""

    @abc.abstractmethod
    def arm(self, on: bool = True) -> None:
        """Arm (or disarm) the device; waits for its answer."""

    @abc.abstractmethod
    def start(self) -> None:
        """Start emission / needling (armed first); waits for its answer. Raises StartInhibited, nothing written,
        while a start inhibit is set (`inhibit_starts`); `arm(True)` too."""

    @abc.abstractmethod
    def inhibit_starts(self, owner: str, why: str) -> None:
        """Refuse START and ARM on, unwritten, until `owner` calls `allow_starts`: checked where the command is
        written, atomically with it, so a START either went out before any STOP its owner writes next or never goes
        out. The safety monitor sets it as an interlock latches, before the trip's STOP; the session as it pauses."""

    @abc.abstractmethod
    def allow_starts(self, owner: str) -> None:
        """Lift `owner`'s inhibit (others stay)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop emission / needling and wait for the acknowledgement."""

    @abc.abstractmethod
    def stop_now(self, why: str) -> float:
        """Write STOP at once without waiting (interlocks); returns the host time (s) it was written."""

    @abc.abstractmethod
    def reset_faults(self) -> None:
        """Clear latched faults (refused by the device while a cause persists)."""

    @abc.abstractmethod
    def status(self) -> dict[str, Any]:
        """A snapshot for status displays: connection, identity, counters."""

    @abc.abstractmethod
    def fault_names(self, bits: int) -> list[str]:
        """The names of the fault bits set in `bits`, as the driver's fault enum spells them."""


class LightSource(Device):
    """A UV light whose exposure ends at a target dose (the device closes its shutter) or at a backup time."""

    REQUIRED_CHANNELS: ClassVar[tuple[str, ...]] = (
        "t_device_us", "dose_mj_cm2", "lamp_temp_c", "skin_contact", "fault_bits")
    """Channels the safety monitor reads on every light (target dose, area dose cap, lamp temperature, contact,
    faults, backup time on the device clock): a light that does not declare them all is refused at discovery."""

    calibrated_irradiance_mw_cm2: float | None = None  # the clinic's last radiometer check, if any (mW/cm²)
    backup_time_s: float | None = None  # the backup time (s) last sent with a target

    @abc.abstractmethod
    def set_target_dose(self, dose_mj_cm2: float) -> float:
        """Set the dose (mJ/cm²) at which the device ends the exposure; its backup time is sent first."""

    @abc.abstractmethod
    def expected_irradiance_mw_cm2(self) -> float:
        """The irradiance (mW/cm²) the exposure is expected at (the backup time is computed from it)."""


class NeedlingPen(Device):
    """A motorised microneedling pen."""

    REQUIRED_CHANNELS: ClassVar[tuple[str, ...]] = ("t_device_us", "depth_mm", "depth_set_mm", "fault_bits")
    """Channels the safety monitor reads on every pen (depth limit on the measured and the set depth, faults)."""

    @abc.abstractmethod
    def set_depth(self, depth_mm: float) -> float:
        """Set the needle depth (mm)."""

    @abc.abstractmethod
    def set_stroke_rate(self, stroke_rate_hz: float) -> float:
        """Set the stroke rate (Hz)."""


KIND_INTERFACES: dict[str, type[Device]] = {"light": LightSource, "needling": NeedlingPen}


def interface_problem(cls: type) -> str:
    """'' if `cls` is a driver the application can use, else what is wrong with it, in a sentence."""
    if not isinstance(cls, type) or not issubclass(cls, Device):
        return "not a driver: it must subclass drivers.interfaces.Device (drivers.base.SerialDevice does)"
    info = getattr(cls, "INFO", None)
    if not isinstance(info, DriverInfo):
        return "not a driver: it declares no INFO (a drivers.types.DriverInfo)"
    interface = KIND_INTERFACES.get(info.kind)
    if interface is None:
        kinds = ", ".join(repr(k) for k in KIND_INTERFACES)
        return f"it declares kind {info.kind!r}; the application drives {kinds}"
    if not issubclass(cls, interface):
        return (f"it declares kind {info.kind!r} but does not implement drivers.interfaces.{interface.__name__}: "
                f"subclass it as well")
    active = getattr(cls, "active_channel", None)
    if active is None:
        return "it declares no active_channel (the bool channel that is 1 while it emits or needles)"
    declared = {c.name: c for c in info.channels}
    if active not in declared:
        return f"its active_channel {active!r} is not one of its declared channels"
    if declared[active].unit != "bool":
        return (f"its active_channel {active!r} is in {declared[active].unit!r}; it must be a bool channel (1 while "
                "it emits or needles)")
    missing = [name for name in getattr(interface, "REQUIRED_CHANNELS", ()) if name not in declared]
    if missing:
        return (f"it does not declare the channel(s) {', '.join(missing)}, which the safety monitor reads on every "
                f"{'light' if info.kind == 'light' else 'pen'} (drivers.interfaces.{interface.__name__}"
                ".REQUIRED_CHANNELS)")
    if cls.__abstractmethods__:
        return f"it does not implement {', '.join(sorted(cls.__abstractmethods__))}"
    return ""
