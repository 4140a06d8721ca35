"""What the safety monitor checks on an active device, declared once per device kind, and the step's limits.

`StepLimits` is what the current step allows (the session swaps it atomically); `KIND_RULES` maps a driver's kind
(`DriverInfo.kind`) to its checks, each a pure function of a block, its active mask and the limits that returns a
verdict (`Found`) or None. The monitor (workstation/session/safety.py) runs them on the reader thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

import numpy as np

from drivers.codes import InterlockCause
from workstation.session import roles

HOST_MAX_LAMP_TEMP_C = 42.0  # below the device's own 45 °C cut-out: the host acts first


@dataclass(frozen=True, slots=True)
class StepLimits:
    """What the current step allows; the session swaps it atomically when a step starts or ends."""

    area_id: str = ""
    light_allowed: bool = False  # False: any open shutter is a protocol-rule trip (e.g. a PIH area, a needling step)
    needling_allowed: bool = False
    target_dose_mj_cm2: float = 0.0  # host-side stop for the current exposure (the device closes at its own target)
    area_dose_before_mj_cm2: float = 0.0  # dose this area already received in this session
    area_dose_cap_mj_cm2: float = float("inf")  # per-session cap for the area
    depth_limit_mm: float = 0.0
    dose_tolerance_mj_cm2: float = 1.0  # about one 10 ms frame at 100 mW/cm²; the device itself closes within 0.025
    depth_tolerance_mm: float = 0.05
    max_lamp_temp_c: float = HOST_MAX_LAMP_TEMP_C

    def describe(self) -> str:
        if not (self.light_allowed or self.needling_allowed):
            return "limits: no light, no needling"
        if self.light_allowed:
            return (f"limits: light on {self.area_id}, target {self.target_dose_mj_cm2:g} mJ/cm², area cap "
                    f"{self.area_dose_cap_mj_cm2:g} mJ/cm² ({self.area_dose_before_mj_cm2:g} given before)")
        return f"limits: needling on {self.area_id}, depth at most {self.depth_limit_mm:g} mm"

    def to_details(self) -> dict[str, object]:
        """Every field as event details (a reader takes a missing one for unreadable). An infinite limit stays a
        float: the recorder writes it as null and names it "inf" in the details' `non_finite` note
        (recording/clean.py), so a reader can tell "no limit" from a number that could not be written."""
        return asdict(self)

    @classmethod
    def unreadable(cls, details: object) -> list[str]:
        """The fields a `limits` event's details do not hold readably: missing (to_details writes them all), text or
        a list where a number belongs, NaN or -inf, a null the `non_finite` note does not name "inf", a bool
        field that is not a bool; every field when the details are not an object (unreadable JSON). from_details
        gives each its default, which is a made-up limit, so a reader must not judge by it (the audit leaves the
        interlocks that use them unjudged: LIMIT_INTERLOCKS). Never raises."""
        return cls._read(details)[1]

    @classmethod
    def from_details(cls, details: object) -> StepLimits:
        """The limits a `limits` event recorded (`to_details`). A value that cannot be read (`unreadable`: an older,
        damaged or foreign file) takes the field's default, so an audit judges on something, never fails; a null
        is an infinite limit only where the details' `non_finite` note names it "inf"."""
        return cls(**cls._read(details)[0])

    @classmethod
    def _read(cls, details: object) -> tuple[dict[str, object], list[str]]:
        """(the values that can be read, the names of those that cannot): one reading for both callers."""
        if not isinstance(details, dict) or "unreadable_json" in details:  # the reader's note for a JSON it could
            return {}, [f.name for f in fields(cls)]  # not parse (recording/reader.py): nothing in it can be read
        noted = details.get(NON_FINITE_NOTE)
        noted = noted if isinstance(noted, dict) else {}
        values: dict[str, object] = {}
        bad: list[str] = []
        for f in fields(cls):
            if f.name not in details:
                bad.append(f.name)
                continue
            v = details[f.name]
            if f.type == "float":
                if v is None and {noted.get(f.name), noted.get("/" + f.name)} - {None} == {"inf"}:
                    values[f.name] = float("inf")
                elif isinstance(v, int | float) and not isinstance(v, bool) and (math.isfinite(v) or v == math.inf):
                    values[f.name] = float(v)
                else:
                    bad.append(f.name)
            elif f.type == "bool":
                if isinstance(v, bool):
                    values[f.name] = v
                else:
                    bad.append(f.name)
            else:
                values[f.name] = v if isinstance(v, str) else str(v)  # a name for messages: its text still shows
                if not isinstance(v, str):
                    bad.append(f.name)
        return values, bad


# The recorder's note naming each number it wrote as null: {"<key>" or "/<key>" (JSON Pointer): "nan" | "inf" |
# "-inf"} (recording/clean.py NON_FINITE_KEY; not imported: the live checks stay apart from the recording package).
NON_FINITE_NOTE = "non_finite"

# Which interlock judges by which limit (the kind checks below): a reader that cannot read a limit cannot judge it.
LIMIT_INTERLOCKS: dict[str, tuple[InterlockCause, ...]] = {
    "area_id": (),  # named in messages only
    "light_allowed": (InterlockCause.PROTOCOL_RULE,),
    "needling_allowed": (InterlockCause.PROTOCOL_RULE,),
    "target_dose_mj_cm2": (InterlockCause.TARGET_DOSE,),
    "dose_tolerance_mj_cm2": (InterlockCause.TARGET_DOSE, InterlockCause.AREA_DOSE_CAP),
    "area_dose_before_mj_cm2": (InterlockCause.AREA_DOSE_CAP,),
    "area_dose_cap_mj_cm2": (InterlockCause.AREA_DOSE_CAP,),
    "depth_limit_mm": (InterlockCause.DEPTH_LIMIT,),
    "depth_tolerance_mm": (InterlockCause.DEPTH_LIMIT,),
    "max_lamp_temp_c": (InterlockCause.OVER_TEMPERATURE,),
}

# The interlocks the kind checks judge on a device's samples, or on its activity the samples show: a reader that had
# to skip samples (a NaN or ±inf: not a measurement) cannot judge them.
SAMPLE_INTERLOCKS: tuple[InterlockCause, ...] = (
    InterlockCause.CONTACT_LOST, InterlockCause.OVER_TEMPERATURE, InterlockCause.TARGET_DOSE,
    InterlockCause.AREA_DOSE_CAP, InterlockCause.PROTOCOL_RULE, InterlockCause.DEPTH_LIMIT,
    InterlockCause.SENSOR_IMPLAUSIBLE, InterlockCause.DEVICE_FAULT, InterlockCause.BACKUP_TIME)

Found = tuple[InterlockCause, str, dict[str, object]] | None  # a kind check's verdict: cause, message, details


def _contact(b: np.ndarray, on: np.ndarray, lim: StepLimits) -> Found:
    """Skin contact lost while emitting: the handpiece is off the treated area."""
    if not b["skin_contact"][on].all():
        return InterlockCause.CONTACT_LOST, "skin contact lost while emitting", {}
    return None


def _lamp_temperature(b: np.ndarray, on: np.ndarray, lim: StepLimits) -> Found:
    """The lamp above the host's limit (HOST_MAX_LAMP_TEMP_C, 42 °C: below the device's own 45 °C cut-out)."""
    temp = float(b["lamp_temp_c"][on].max())
    if temp > lim.max_lamp_temp_c:
        return (InterlockCause.OVER_TEMPERATURE, f"lamp at {temp:.1f} °C, above {lim.max_lamp_temp_c:g} °C",
                {"lamp_temp_c": temp, "limit_c": lim.max_lamp_temp_c})
    return None


def _target_dose(b: np.ndarray, on: np.ndarray, lim: StepLimits) -> Found:
    """The dose past the step's target by more than the tolerance (one 10 ms frame at 100 mW/cm²): the device's own
    dose control failed to close (the target comes from the dose engine, CLINICAL.md)."""
    dose = float(b["dose_mj_cm2"][on].max())
    if dose >= lim.target_dose_mj_cm2 + lim.dose_tolerance_mj_cm2:
        return (InterlockCause.TARGET_DOSE, f"dose {dose:.1f} mJ/cm² passed the planned {lim.target_dose_mj_cm2:g} "
                "mJ/cm² and the shutter is still open", {"dose_mj_cm2": dose, "target_mj_cm2": lim.target_dose_mj_cm2})
    return None


def _area_dose_cap(b: np.ndarray, on: np.ndarray, lim: StepLimits) -> Found:
    """The area's dose this session past its cap (the protocol's per-session cap, CLINICAL.md via the dose engine)."""
    total = lim.area_dose_before_mj_cm2 + float(b["dose_mj_cm2"][on].max())
    if total >= lim.area_dose_cap_mj_cm2 + lim.dose_tolerance_mj_cm2:
        return (InterlockCause.AREA_DOSE_CAP, f"area {lim.area_id} would exceed its cap of "
                f"{lim.area_dose_cap_mj_cm2:g} mJ/cm² this session",
                {"area_dose_mj_cm2": total, "cap_mj_cm2": lim.area_dose_cap_mj_cm2})
    return None


def _depth(b: np.ndarray, on: np.ndarray, lim: StepLimits) -> Found:
    """The needle deeper than the area's limit (set point or measured; CLINICAL.md: never above 2.5 mm, less by
    region, from the dose engine), beyond a 0.05 mm tolerance."""
    depth = float(max(b["depth_mm"][on].max(), b["depth_set_mm"][on].max()))
    if depth > lim.depth_limit_mm + lim.depth_tolerance_mm:
        return (InterlockCause.DEPTH_LIMIT, f"needle depth {depth:.2f} mm is over the area's limit of "
                f"{lim.depth_limit_mm:g} mm", {"depth_mm": depth, "limit_mm": lim.depth_limit_mm})
    return None


@dataclass(frozen=True, slots=True)
class KindRules:
    """What the monitor checks on a device of one kind while it is active, declared once per kind."""

    allowed: str  # the StepLimits field that allows this kind's activity in the current step ("": none does)
    refused: str  # what happened, when the step allows none
    doing: str  # "emitting" / "needling", for a fault's message
    checks: tuple[Callable[[np.ndarray, np.ndarray, StepLimits], Found], ...]  # the kind's own, in order
    light: bool = False  # also the backup time and the idle lamp temperature


KIND_RULES = {
    roles.LIGHT: KindRules("light_allowed", "light emitted during a step that allows no UV", "emitting",
                           (_contact, _lamp_temperature, _target_dose, _area_dose_cap), light=True),
    roles.NEEDLING: KindRules("needling_allowed", "needling during a step that allows none", "needling", (_depth,)),
}
UNKNOWN_KIND = KindRules("", "active, but no step allows a device of its kind", "active", ())  # fails safe
