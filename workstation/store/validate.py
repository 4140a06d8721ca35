"""The store's checks on typed values, in words, before anything reaches SQLite: the same rules the window applies.
Regions, lesion types, screening items and scar kinds come from the factory reference tables (seeds/tables), which a
clinic cannot change; numbers must be finite and inside their ranges; no date may lie after today (the visit)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from workstation.errors import UserError
from workstation.progname import command
from workstation.protocols.model import LESION_TYPES, SKIN_TYPES
from workstation.protocols.schema import DEVICE_DOSE_MJ_CM2, DEVICE_PASSES_MAX, DEVICE_STROKE_RATE_HZ
from workstation.protocols.tables import Tables
from workstation.store.records import REPIGMENTATION_BANDS, Response, Treatment
from workstation.terminal import quoted

# Device ranges (drivers/light.py target dose 1–5000 mJ/cm²; CLINICAL.md: depth never above 2.5 mm, pens 50–150 Hz).
DOSE_MAX_MJ_CM2 = DEVICE_DOSE_MJ_CM2[1]
DEPTH_MAX_MM = 2.5
STROKE_RATE_MIN_HZ, STROKE_RATE_MAX_HZ = DEVICE_STROKE_RATE_HZ
PASSES_MAX = DEVICE_PASSES_MAX
ERYTHEMA_DURATION_MAX_H = 24 * 60  # two months: longer is a typing error, not a response
SCAR_AGE_MAX_MONTHS = 1200
SIZE_MAX_CM2 = 2000.0
SESSIONS_MAX = 1000
INTERVAL_MAX_DAYS = 3650
# The earliest date a record may carry (team default, docs/protocol-file-schema.md "Store inputs"): targeted 308 nm
# light for scars dates from 2002-2004 (CLINICAL.md), so an earlier session, MED, screening answer or course date is a
# typing error, not a record. Never after today either.
EARLIEST_RECORD_DATE = date(2000, 1, 1)
# What a clinician may override (dose.plan.OVERRIDABLE) and each value's device range.
OVERRIDE_RANGES = {"target_dose_mj_cm2": (DEVICE_DOSE_MJ_CM2, "mJ/cm²", False),
                   "depth_mm": ((0.0, DEPTH_MAX_MM), "mm", False),
                   "stroke_rate_hz": (DEVICE_STROKE_RATE_HZ, "Hz", False),
                   "passes": ((1, PASSES_MAX), "", True)}


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
        raise UserError(f"The {what} must be {kind}{' in ' + unit if unit else ''}, not {quoted(value)}.")
    v = float(value)
    below = v <= lo if lo_open else v < lo
    if not math.isfinite(v) or below or v > hi:
        lower = f"above {lo:g}" if lo_open else f"{lo:g}"
        span = f"{lower} and at most {hi:g}" if lo_open else f"{lower}–{hi:g}"
        raise UserError(f"The {what} is {v:g}{u}; it must be {span}{u}.")
    return v


def not_future(d: date, what: str, *, earliest: tuple[date, str] | None = None) -> date:
    """`d` as a calendar date (a datetime is refused: a record is dated by day) between EARLIEST_RECORD_DATE (and
    `earliest`, a (date, what it is) pair) and today, else a UserError in words."""
    if isinstance(d, datetime) or not isinstance(d, date):
        raise UserError(f"The {what} must be a calendar date (year, month, day), not {quoted(d)}.")
    if d > today():
        raise UserError(f"The {what} {d.isoformat()} is after today ({today().isoformat()}); a record cannot be "
                        "dated in the future. Check the date.")
    if d < EARLIEST_RECORD_DATE:
        raise UserError(f"The {what} {d.isoformat()} is before {EARLIEST_RECORD_DATE.isoformat()}, the earliest date "
                        "a record may carry; check the date.")
    if earliest is not None and d < earliest[0]:
        # earliest[1] says what the bound is; it carries the date only where that date identifies nobody.
        raise UserError(f"The {what} {d.isoformat()} is before {earliest[1]}; check the date.")
    return d


def text(value: Any, what: str) -> str:
    """Non-empty text, trimmed, or a UserError naming the field."""
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"The {what} must be some text, not {'empty text' if isinstance(value, str) else quoted(value)}.")
    return value.strip()


def flag(value: Any, what: str) -> bool:
    """True or False only: "no" or 0 are not read as an answer."""
    if not isinstance(value, bool):
        raise UserError(f"The {what} must be yes or no (True or False), not {quoted(value)}.")
    return value


def an_id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63:
        raise UserError(f"The {what} must be the number of a record (a whole number from 1), not {quoted(value)}.")
    return value


def ids(values: Any, what: str) -> tuple[int, ...]:
    """Distinct record numbers from a list, tuple or set, else a UserError."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise UserError(f"The {what} must be a list of record numbers, not {quoted(values)}.")
    out = tuple(an_id(v, what) for v in values)
    if len(set(out)) != len(out):
        raise UserError(f"The {what} lists an area twice; list each once.")
    return out


def check_override(field: str, proposed: Any, value: Any, reason: Any, who: Any, at: Any) -> str:
    """A stored override: a known field, its values finite and within the device range, a reason and a name, and
    `at` an ISO 8601 time not in the future and not before EARLIEST_RECORD_DATE. Returns `at` as given or now."""
    if not isinstance(field, str) or field not in OVERRIDE_RANGES:
        raise UserError(f"{quoted(field)} cannot be overridden; the numbers a clinician may change are "
                        f"{', '.join(OVERRIDE_RANGES)}.")
    (lo, hi), unit, integer = OVERRIDE_RANGES[field]
    number(value, f"overridden {field.replace('_', ' ')}", lo, hi, unit, integer=integer)
    if proposed is not None:
        number(proposed, f"proposed {field.replace('_', ' ')}", lo, hi, unit, integer=integer)
    text(reason, "reason for the override")
    text(who, "name of who overrides")
    if at is None:
        return datetime.now(UTC).isoformat(timespec="seconds")
    try:
        when = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        when = None
    if when is None:
        raise UserError(f"The override time must be an ISO 8601 date and time, not {quoted(at)}.")
    not_future(when.date(), "override time")
    return at


def check_area(label: str, body_region: str, lesion_type: str, size_cm2: float, skin_type: str,
               scar_age_months: int | None = None, scar_kind: str | None = None, *, kind_fit: bool = True) -> None:
    """UserError in words unless the area's fields are valid. `kind_fit`: the scar kind must fit the lesion (checked
    whenever a kind is given; a correction of the lesion alone keeps the kind on file — the engine still blocks UV for
    a kind that forbids it, and a PIH lesion blocks UV whatever the kind)."""
    t = factory_tables()
    if not isinstance(label, str) or not label.strip():
        raise UserError("An area needs a label (e.g. left cheek).")
    for what, v in (("body region", body_region), ("lesion type", lesion_type), ("skin type", skin_type),
                    ("scar kind", scar_kind)):
        if not isinstance(v, str) and not (v is None and what == "scar kind"):
            raise UserError(f"The {what} must be a name from the tables, not {quoted(v)}.")
    if body_region not in t.needling.regions:
        raise UserError(f"Body region {quoted(body_region)} is not in the region table; use one of "
                        f"{', '.join(t.needling.regions)}.")
    if lesion_type not in LESION_TYPES:
        raise UserError(f"Lesion type {quoted(lesion_type)} is unknown; use one of {', '.join(LESION_TYPES)}.")
    if skin_type not in SKIN_TYPES:
        raise UserError(f"Skin type {quoted(skin_type)} is unknown; use a Fitzpatrick type {', '.join(SKIN_TYPES)}.")
    number(size_cm2, "area size", 0, SIZE_MAX_CM2, "cm²", lo_open=True)
    if scar_age_months is not None:
        number(scar_age_months, "scar age", 0, SCAR_AGE_MAX_MONTHS, "months", integer=True)
    kinds = tuple(t.scar_kinds.labels) if t.scar_kinds else ()
    if scar_kind is not None and scar_kind not in kinds:
        raise UserError(f"Scar kind {quoted(scar_kind)} is unknown; use one of {', '.join(kinds)}.")
    if kind_fit and scar_kind is not None and t.scar_kinds is not None and not t.scar_kinds.fits(scar_kind,
                                                                                                  lesion_type):
        fit = [k for k in kinds if t.scar_kinds.fits(k, lesion_type)]
        raise UserError(f"Scar kind {scar_kind} ({t.scar_kinds.labels[scar_kind]}) does not fit a "
                        f"{lesion_type.replace('_', ' ')} area; for that lesion use one of {', '.join(fit) or 'none'}, "
                        "or correct the lesion type.")


def check_screening_item(item_id: str) -> None:
    known = [i.id for i in factory_tables().screening]
    if not isinstance(item_id, str) or item_id not in known:
        raise UserError(f"Screening item {quoted(item_id)} is unknown; the screening items are {', '.join(known)}.")


def check_treatment(t: Treatment) -> None:
    if not isinstance(t, Treatment):
        raise UserError(f"A treatment must be a Treatment record, not {quoted(t)}.")
    an_id(t.area_id, "treatment's area")
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
            number(t.stroke_rate_hz, "stroke rate", STROKE_RATE_MIN_HZ, STROKE_RATE_MAX_HZ, "Hz")
        if t.passes is not None:
            number(t.passes, "number of passes", 0, PASSES_MAX, "", integer=True)
    else:
        raise UserError(f"Modality {quoted(t.modality)} is unknown; a treatment is light or needling.")


def check_response(r: Response) -> None:
    if not isinstance(r, Response):
        raise UserError(f"A response must be a Response record, not {quoted(r)}.")
    an_id(r.area_id, "response's area")
    flag(r.blistering, "blistering answer")
    if not isinstance(r.notes, str):
        raise UserError(f"The response note must be text, not {quoted(r.notes)}.")
    if r.erythema_grade is not None:
        number(r.erythema_grade, "erythema grade (NHS Tayside scale)", 0, 4, "", integer=True)
    if r.pain_0_10 is not None:
        number(r.pain_0_10, "pain score", 0, 10, "", integer=True)
    if r.erythema_duration_h is not None:
        number(r.erythema_duration_h, "erythema duration", 0, ERYTHEMA_DURATION_MAX_H, "h")
    if r.repigmentation_band is not None and (not isinstance(r.repigmentation_band, str)
                                              or r.repigmentation_band not in REPIGMENTATION_BANDS):
        raise UserError(f"Repigmentation band {quoted(r.repigmentation_band)} is unknown; use one of "
                        f"{', '.join(REPIGMENTATION_BANDS)} (%).")
