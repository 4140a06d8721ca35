"""A clinician's change to a proposed number: only within the plan's bounds, always with a reason and a name, and
kept in the plan beside the number it replaced."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime

from workstation.dose.plan import OVERRIDABLE, AreaPlan, Override
from workstation.errors import UserError
from workstation.terminal import quoted

LABELS = {"target_dose_mj_cm2": "target dose", "depth_mm": "depth", "stroke_rate_hz": "stroke rate",
          "passes": "passes"}


def override(area_plan: AreaPlan, field: str, value: float, reason: str, who: str, *,
             at: datetime | None = None) -> AreaPlan:
    """Return a copy of `area_plan` with `field` set to `value`; raise UserError if that is not allowed."""
    if field not in OVERRIDABLE:
        raise UserError(f"{quoted(field)} cannot be changed; the numbers a clinician may change are "
                        f"{', '.join(OVERRIDABLE)}.")
    bounds = area_plan.bounds.get(field)
    if bounds is None or getattr(area_plan, field) is None:
        raise UserError(f"The {LABELS[field]} of area {area_plan.label} is not part of this plan "
                        f"(modality: {area_plan.modality}); it cannot be changed.")
    if not reason or not reason.strip():
        raise UserError(f"Give a reason for changing the {LABELS[field]}; it is kept with the plan.")
    if not who or not who.strip():
        raise UserError("Say who changes the plan; the name is kept with the change.")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise UserError(f"The {LABELS[field]} must be a number in {bounds.unit}, not {quoted(value)}.") from None
    if not math.isfinite(v):
        raise UserError(f"The {LABELS[field]} must be a number within {bounds.minimum:g}–{bounds.maximum:g} "
                        f"{bounds.unit}, not {quoted(value)}.")
    if not bounds.minimum <= v <= bounds.maximum:
        raise UserError(f"{v:g} {bounds.unit} is outside the allowed {LABELS[field]} for area {area_plan.label}: "
                        f"{bounds.minimum:g}–{bounds.maximum:g} {bounds.unit}. Choose a value inside it.")
    if bounds.step:
        k = (v - bounds.minimum) / bounds.step
        if abs(k - round(k)) > 1e-6:
            raise UserError(f"The {LABELS[field]} must be a multiple of {bounds.step:g} {bounds.unit} from "
                            f"{bounds.minimum:g}; {v:g} is not.")
    new_value: float | int = int(round(v)) if field == "passes" else v
    record = Override(field, getattr(area_plan, field), new_value, reason.strip(), who.strip(),
                      (at or datetime.now(UTC)).isoformat(timespec="seconds"))
    return dataclasses.replace(area_plan, **{field: new_value}, overrides=(*area_plan.overrides, record))
