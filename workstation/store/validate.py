"""The store's checks on typed values, in words, before anything reaches SQLite: the same rules the window applies.
Regions, lesion types, screening items and scar kinds come from the factory reference tables (seeds/tables), which a
clinic cannot change; numbers must be finite and inside their ranges; no date may lie after today (the visit)."""

from __future__ import annotations

import math
from datetime import date
from functools import lru_cache
from typing import Any

from workstation.errors import UserError
from workstation.progname import command
from workstation.protocols.model import LESION_TYPES, SKIN_TYPES
from workstation.protocols.schema import DEVICE_DOSE_MJ_CM2
from workstation.protocols.tables import Tables
from workstation.store.records import REPIGMENTATION_BANDS, Response, Treatment

# Device ranges (drivers/light.py target dose 1–5000 mJ/cm²; CLINICAL.md: depth never above 2.5 mm, pens 50–150 Hz).
DOSE_MAX_MJ_CM2 = DEVICE_DOSE_MJ_CM2[1]
DEPTH_MAX_MM = 2.5
STROKE_RATE_MAX_HZ = 150.0
PASSES_MAX = 20
ERYTHEMA_DURATION_MAX_H = 24 * 60  # two months: longer is a typing error, not a response
SCAR_AGE_MAX_MONTHS = 1200
SIZE_MAX_CM2 = 2000.0


@lru_cache(maxsize=1)
def factory_tables() -> Tables:
    from workstation.protocols.library import seeds_dir
    from workstation.protocols.tables import load_tables

    tables, errors = load_tables(seeds_dir() / "tables")
    if tables is None:
        raise UserError("The reference tables did not load, so typed values cannot be checked; run "
                        f"`{command('protocols check')}` ({errors[0] if errors else 'unknown error'}).")
    return tables


def today() -> date:
    return date.today()


def number(value: Any, what: str, lo: float, hi: float, unit: str, *, integer: bool = False,
           lo_open: bool = False) -> float:
    """`value` as a finite number within lo–hi (lo excluded when lo_open), or a UserError in words."""
    kind = "a whole number" if integer else "a number"
    u = f" {unit}" if unit else ""
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            integer and not (math.isfinite(value) and float(value).is_integer())):
        raise UserError(f"The {what} must be {kind}{' in ' + unit if unit else ''}, not {value!r}.")
    v = float(value)
    below = v <= lo if lo_open else v < lo
    if not math.isfinite(v) or below or v > hi:
        lower = f"above {lo:g}" if lo_open else f"{lo:g}"
        span = f"{lower} and at most {hi:g}" if lo_open else f"{lower}–{hi:g}"
        raise UserError(f"The {what} is {v:g}{u}; it must be {span}{u}.")
    return v


def not_future(d: date, what: str) -> date:
    if not isinstance(d, date):
        raise UserError(f"The {what} must be a date, not {d!r}.")
    if d > today():
        raise UserError(f"The {what} {d.isoformat()} is after today ({today().isoformat()}); a record cannot be "
                        "dated in the future. Check the date.")
    return d


def check_area(label: str, body_region: str, lesion_type: str, size_cm2: float, skin_type: str,
               scar_age_months: int | None = None, scar_kind: str | None = None) -> None:
    t = factory_tables()
    if not isinstance(label, str) or not label.strip():
        raise UserError("An area needs a label (e.g. left cheek).")
    if body_region not in t.needling.regions:
        raise UserError(f"Body region {body_region!r} is not in the region table; use one of "
                        f"{', '.join(t.needling.regions)}.")
    if lesion_type not in LESION_TYPES:
        raise UserError(f"Lesion type {lesion_type!r} is unknown; use one of {', '.join(LESION_TYPES)}.")
    if skin_type not in SKIN_TYPES:
        raise UserError(f"Skin type {skin_type!r} is unknown; use a Fitzpatrick type {', '.join(SKIN_TYPES)}.")
    number(size_cm2, "area size", 0, SIZE_MAX_CM2, "cm²", lo_open=True)
    if scar_age_months is not None:
        number(scar_age_months, "scar age", 0, SCAR_AGE_MAX_MONTHS, "months", integer=True)
    kinds = tuple(t.scar_kinds.labels) if t.scar_kinds else ()
    if scar_kind is not None and scar_kind not in kinds:
        raise UserError(f"Scar kind {scar_kind!r} is unknown; use one of {', '.join(kinds)}.")


def check_screening_item(item_id: str) -> None:
    known = [i.id for i in factory_tables().screening]
    if item_id not in known:
        raise UserError(f"Screening item {item_id!r} is unknown; the screening items are {', '.join(known)}.")


def check_treatment(t: Treatment) -> None:
    if t.modality == "light":
        if t.dose_mj_cm2 is None:
            raise UserError("A light treatment needs the delivered dose in mJ/cm².")
        number(t.dose_mj_cm2, "delivered light dose", 0, DOSE_MAX_MJ_CM2, "mJ/cm²")
        if any(v is not None for v in (t.depth_mm, t.stroke_rate_hz, t.passes)):
            raise UserError("A light treatment has no depth, stroke rate or passes; record needling separately.")
    elif t.modality == "needling":
        if t.dose_mj_cm2 is not None:
            raise UserError("A needling treatment has no light dose; record light separately.")
        if t.depth_mm is not None:
            number(t.depth_mm, "needling depth", 0, DEPTH_MAX_MM, "mm")
        if t.stroke_rate_hz is not None:
            number(t.stroke_rate_hz, "stroke rate", 0, STROKE_RATE_MAX_HZ, "Hz")
        if t.passes is not None:
            number(t.passes, "number of passes", 0, PASSES_MAX, "", integer=True)
    else:
        raise UserError(f"Modality {t.modality!r} is unknown; a treatment is light or needling.")


def check_response(r: Response) -> None:
    if r.erythema_grade is not None:
        number(r.erythema_grade, "erythema grade (NHS Tayside scale)", 0, 4, "", integer=True)
    if r.pain_0_10 is not None:
        number(r.pain_0_10, "pain score", 0, 10, "", integer=True)
    if r.erythema_duration_h is not None:
        number(r.erythema_duration_h, "erythema duration", 0, ERYTHEMA_DURATION_MAX_H, "h")
    if r.repigmentation_band is not None and r.repigmentation_band not in REPIGMENTATION_BANDS:
        raise UserError(f"Repigmentation band {r.repigmentation_band!r} is unknown; use one of "
                        f"{', '.join(REPIGMENTATION_BANDS)} (%).")
