"""The reference tables in seeds/tables/: read, checked and turned into plain records the dose engine uses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workstation.protocols.model import MODALITIES, SKIN_TYPES, ProtocolError
from workstation.protocols.reader import Reader, read_toml
from workstation.protocols.schema import DAYS_MAX, DEVICE_PASSES_MAX, SESSIONS_MAX
from workstation.protocols.visit_tables import ScarKinds, SessionTime, read_scar_kinds, read_session_time

TABLE_FILES = ("light_dosing", "needling", "regions", "intervals", "screening", "aftercare", "scar_kinds",
               "session_time")


@dataclass(frozen=True)
class SkinTypeDose:
    start_mj_cm2: float
    increment_mj_cm2: float
    max_mj_cm2: float


@dataclass(frozen=True)
class MissedRule:
    from_days: int
    to_days: int | None
    action: str  # "keep", "reduce", "restart"
    reduce_percent: float = 0.0


@dataclass(frozen=True)
class LightTables:
    by_skin_type: dict[str, SkinTypeDose]
    face_max_mj_cm2: float
    escalation_default_percent: float
    escalation_max_percent: float
    hold_grade: int
    reduce_grade: int
    long_erythema_h: float
    reduce_mj_cm2: float
    reduce_percent: float
    blister_grade: int
    blister_reduce_mj_cm2: float
    blister_reduce_percent: float
    blister_hold_sessions: int
    blister_climb_fraction: float
    missed: tuple[MissedRule, ...]
    sources: dict[str, str]
    med_first_dose_max_fraction: float = 0.7
    med_minus_min_mj_cm2: float = 50.0
    med_plausible_min_mj_cm2: float = 130.0
    cumulative_cap_max_mj_cm2: float = 20000.0
    area_warn_mj_cm2: float = 15000.0
    area_warn_exposures: int = 20
    patient_warn_mj_cm2: float = 40000.0
    patient_warn_exposures: int = 60


@dataclass(frozen=True)
class DepthRange:
    min_mm: float
    max_mm: float


@dataclass(frozen=True)
class Region:
    name: str
    face: bool
    depth_class: str
    needling_allowed: bool


@dataclass(frozen=True)
class NeedlingTables:
    stroke_rate_min_hz: float
    stroke_rate_max_hz: float
    depth_max_mm: float
    depth_step_mm: float
    passes_max: int
    depth_by_class: dict[str, DepthRange]
    lesion_depth: dict[str, tuple[DepthRange, tuple[str, ...]]]
    pih_prone_skin_types: tuple[str, ...]
    pih_face_max_depth_mm: float
    pih_other_max_depth_mm: float
    pih_passes_max: int
    pih_min_interval_days: int
    regions: dict[str, Region]
    sources: dict[str, str]


@dataclass(frozen=True)
class IntervalTables:
    light_min_days: int
    needling_min_days: int
    no_uv_after_needling_days: int
    no_needling_after_erythema_days: int
    no_needling_erythema_grade: int
    sources: dict[str, str]
    course_sessions_max: int = 30


@dataclass(frozen=True)
class ScreeningItem:
    id: str
    question: str
    blocks: tuple[str, ...]
    warns: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Tables:
    light: LightTables
    needling: NeedlingTables
    intervals: IntervalTables
    screening: tuple[ScreeningItem, ...]
    warning_skin_types: tuple[str, ...]
    aftercare: dict[str, tuple[str, ...]]  # "always", "light", "needling"
    scar_kinds: ScarKinds | None = None
    session_time: SessionTime | None = None


def load_tables(folder: Path) -> tuple[Tables | None, list[ProtocolError]]:
    """Read every table file in `folder`; any error leaves the tables unusable (None) and is reported."""
    readers: dict[str, Reader] = {}
    errors: list[ProtocolError] = []
    for name in TABLE_FILES:
        path = folder / f"{name}.toml"
        data, err = read_toml(path)
        if err:
            errors.append(err)
        else:
            readers[name] = Reader(path, data or {})
    if errors:
        return None, errors
    light = _light(readers["light_dosing"])
    needling = _needling(readers["needling"], readers["regions"])
    intervals = _intervals(readers["intervals"])
    screening, warn_types = _screening(readers["screening"])
    aftercare = _aftercare(readers["aftercare"])
    scar_kinds = read_scar_kinds(readers["scar_kinds"])
    session_time = read_session_time(readers["session_time"])
    for r in readers.values():
        for section, body in r.data.items():  # `team_default = true` marks a section's numbers as team defaults
            if isinstance(body, dict) and "team_default" in body:
                r.boolean(f"{section}.team_default")
        errors.extend(r.finish())
    if errors:
        return None, errors
    assert light and needling and intervals and screening is not None and aftercare
    return Tables(light, needling, intervals, screening, warn_types, aftercare, scar_kinds, session_time), []


def _light(r: Reader) -> LightTables | None:
    by_type: dict[str, SkinTypeDose] = {}
    for t in SKIN_TYPES:
        vals = [r.number(f"skin_type.{t}.{k}", 1, 5000) for k in ("start_mj_cm2", "increment_mj_cm2", "max_mj_cm2")]
        if None not in vals:
            by_type[t] = SkinTypeDose(*map(float, vals))
    sources = {s: r.text(f"{s}.source") or "" for s in ("skin_type", "face", "escalation", "erythema", "missed",
                                                         "med", "cumulative")}
    sources["med_minus"] = r.text("med.minus_source") or ""
    sources["med_floor"] = r.text("med.plausible_min_source") or ""
    r.boolean("cumulative.team_default")
    nums = dict(
        face_max_mj_cm2=r.number("face.max_mj_cm2", 1, 5000),
        escalation_default_percent=r.number("escalation.default_percent", 0, 20),
        escalation_max_percent=r.number("escalation.max_percent", 0, 20),
        hold_grade=r.integer("erythema.hold_grade", 0, 4),
        reduce_grade=r.integer("erythema.reduce_grade", 1, 4),
        long_erythema_h=r.number("erythema.long_erythema_h", 1, 24 * 60),
        reduce_mj_cm2=r.number("erythema.reduce_mj_cm2", 0, 5000),
        reduce_percent=r.number("erythema.reduce_percent", 0, 100),
        blister_grade=r.integer("erythema.blister_grade", 1, 4),
        blister_reduce_mj_cm2=r.number("erythema.blister_reduce_mj_cm2", 0, 5000),
        blister_reduce_percent=r.number("erythema.blister_reduce_percent", 0, 100),
        blister_hold_sessions=r.integer("erythema.blister_hold_sessions", 0, 20),
        blister_climb_fraction=r.number("erythema.blister_climb_fraction", 0, 1),
        med_first_dose_max_fraction=r.number("med.first_dose_max_fraction", 0.05, 0.7),
        med_minus_min_mj_cm2=r.number("med.minus_min_mj_cm2", 1, 500),
        med_plausible_min_mj_cm2=r.number("med.plausible_min_mj_cm2", 1, 5000),
        cumulative_cap_max_mj_cm2=r.number("cumulative.max_per_area_mj_cm2", 1, 1_000_000),
        area_warn_mj_cm2=r.number("cumulative.area_warn_mj_cm2", 1, 1_000_000),
        area_warn_exposures=r.integer("cumulative.area_warn_exposures", 1, 10_000),
        patient_warn_mj_cm2=r.number("cumulative.patient_warn_mj_cm2", 1, 10_000_000),
        patient_warn_exposures=r.integer("cumulative.patient_warn_exposures", 1, 100_000),
    )
    missed: list[MissedRule] = []
    raw = r.raw("missed.rules")
    if not isinstance(raw, list) or not raw:
        r.error("missed.rules", "must be a non-empty list of {from_days, to_days, action} tables.")
    else:
        for i, row in enumerate(raw):
            sub = Reader(r.path, {"missed": {f"rules[{i}]": row}}, seen=r.seen, asked=r.asked)
            k = f"missed.rules[{i}]"
            lo = sub.integer(f"{k}.from_days", 0, DAYS_MAX)
            hi = sub.integer(f"{k}.to_days", 0, DAYS_MAX, required=False)
            action = sub.choice(f"{k}.action", ("keep", "reduce", "restart"))
            pct = sub.number(f"{k}.reduce_percent", 0, 100, required=action == "reduce", default=0.0)
            r.errors.extend(sub.errors)
            if not sub.errors:
                missed.append(MissedRule(lo, hi, action, float(pct)))
    if r.errors or len(by_type) != len(SKIN_TYPES):
        return None
    _light_cross_checks(r, by_type, nums, missed)
    if r.errors:
        return None
    return LightTables(by_skin_type=by_type, missed=tuple(missed), sources=sources, **nums)


def _light_cross_checks(r: Reader, by_type: dict[str, SkinTypeDose], n: dict, missed: list[MissedRule]) -> None:
    """Numbers that must agree with each other: missed-session ranges ordered and not overlapping (a later delay never
    gets a gentler rule), warnings below the caps, start ≤ maximum, the MED floor not above the lowest start."""
    for t, d in by_type.items():
        if d.start_mj_cm2 > d.max_mj_cm2:
            r.error(f"skin_type.{t}.start_mj_cm2", f"is {d.start_mj_cm2:g}; it must not exceed max_mj_cm2 "
                    f"({d.max_mj_cm2:g}).")
    lowest = min(d.start_mj_cm2 for d in by_type.values())
    if n["med_plausible_min_mj_cm2"] > lowest:
        r.error("med.plausible_min_mj_cm2", f"is {n['med_plausible_min_mj_cm2']:g}; it must not exceed the lowest "
                f"skin-type start ({lowest:g} mJ/cm²).")
    if n["escalation_default_percent"] > n["escalation_max_percent"]:
        r.error("escalation.default_percent", f"is {n['escalation_default_percent']:g}; it must not exceed "
                f"max_percent ({n['escalation_max_percent']:g}).")
    if not n["hold_grade"] < n["reduce_grade"] <= n["blister_grade"]:
        r.error("erythema.reduce_grade", "the grades must rise: hold_grade < reduce_grade ≤ blister_grade.")
    if n["area_warn_mj_cm2"] > n["cumulative_cap_max_mj_cm2"]:
        r.error("cumulative.area_warn_mj_cm2", f"is {n['area_warn_mj_cm2']:g} mJ/cm²; a warning must come before "
                f"the cap: at most max_per_area_mj_cm2 ({n['cumulative_cap_max_mj_cm2']:g} mJ/cm²).")
    if n["patient_warn_mj_cm2"] < n["area_warn_mj_cm2"]:
        r.error("cumulative.patient_warn_mj_cm2", f"is {n['patient_warn_mj_cm2']:g} mJ/cm²; the patient's warning "
                f"must not be below one area's ({n['area_warn_mj_cm2']:g} mJ/cm²).")
    severity = {"keep": 0, "reduce": 1, "restart": 2}
    prev: MissedRule | None = None
    for i, m in enumerate(missed):
        k = f"missed.rules[{i}]"
        if m.to_days is not None and m.to_days < m.from_days:
            r.error(f"{k}.to_days", f"is {m.to_days}; it must not be below from_days ({m.from_days}).")
        if prev is not None:
            if prev.to_days is None:
                r.error(k, "follows a rule with no to_days (open-ended); only the last rule may be open-ended.")
            elif m.from_days <= prev.to_days:
                r.error(f"{k}.from_days", f"is {m.from_days}; the rules must be in order and not overlap: it must be "
                        f"above the previous rule's to_days ({prev.to_days}).")
            gentler = severity[m.action] < severity[prev.action] or (
                m.action == prev.action == "reduce" and m.reduce_percent < prev.reduce_percent)
            if gentler:
                r.error(f"{k}.action", "is gentler than the rule for a shorter delay; a longer delay never gets a "
                        "gentler rule.")
        prev = m


def _needling(r: Reader, rr: Reader) -> NeedlingTables | None:
    sources = {s: r.text(f"{s}.source") or "" for s in ("pen", "depth", "lesion_depth", "pih_prone")}
    sources["regions"] = rr.text("source") or ""
    depth: dict[str, DepthRange] = {}
    for cls in (r.table("depth") or {}):
        if cls in ("source", "team_default"):
            continue
        lo, hi = r.number(f"depth.{cls}.min_mm", 0, 2.5), r.number(f"depth.{cls}.max_mm", 0, 2.5)
        if lo is not None and hi is not None:
            depth[cls] = DepthRange(float(lo), float(hi))
    lesion_depth: dict[str, tuple[DepthRange, tuple[str, ...]]] = {}
    for lesion in (r.table("lesion_depth") or {}):
        if lesion in ("source", "team_default"):
            continue
        k = f"lesion_depth.{lesion}"
        lo, hi = r.number(f"{k}.min_mm", 0, 2.5), r.number(f"{k}.max_mm", 0, 2.5)
        classes = r.choice_list(f"{k}.depth_classes", tuple(depth))
        if lo is not None and hi is not None and classes:
            lesion_depth[lesion] = (DepthRange(float(lo), float(hi)), classes)
    regions: dict[str, Region] = {}
    for name in (rr.table("regions") or {}):
        k = f"regions.{name}"
        rr.only_keys(k, ("face", "depth_class", "needling"))
        cls = rr.choice(f"{k}.depth_class", tuple(depth))
        if cls:
            regions[name] = Region(name, rr.boolean(f"{k}.face"), cls, rr.boolean(f"{k}.needling", default=True))
    vals = dict(
        stroke_rate_min_hz=r.number("pen.stroke_rate_min_hz", 50, 150),
        stroke_rate_max_hz=r.number("pen.stroke_rate_max_hz", 50, 150),
        depth_max_mm=r.number("pen.depth_max_mm", 0, 2.5),
        depth_step_mm=r.number("pen.depth_step_mm", 0.01, 1),
        passes_max=r.integer("pen.passes_max", 1, DEVICE_PASSES_MAX),
        pih_prone_skin_types=r.choice_list("pih_prone.skin_types", SKIN_TYPES),
        pih_face_max_depth_mm=r.number("pih_prone.face_max_depth_mm", 0, 2.5),
        pih_other_max_depth_mm=r.number("pih_prone.other_max_depth_mm", 0, 2.5),
        pih_passes_max=r.integer("pih_prone.passes_max", 1, DEVICE_PASSES_MAX),
        pih_min_interval_days=r.integer("pih_prone.min_interval_days", 1, DAYS_MAX),
    )
    if r.errors or rr.errors:
        return None
    _needling_cross_checks(r, vals, depth)
    if r.errors:
        return None
    return NeedlingTables(depth_by_class=depth, lesion_depth=lesion_depth, regions=regions, sources=sources, **vals)


def _needling_cross_checks(r: Reader, v: dict, depth: dict[str, DepthRange]) -> None:
    if v["stroke_rate_min_hz"] > v["stroke_rate_max_hz"]:
        r.error("pen.stroke_rate_min_hz", f"is {v['stroke_rate_min_hz']:g} Hz; it must not exceed stroke_rate_max_hz "
                f"({v['stroke_rate_max_hz']:g} Hz).")
    for cls, d in depth.items():
        if d.min_mm > d.max_mm or d.max_mm > v["depth_max_mm"]:
            r.error(f"depth.{cls}", f"is {d.min_mm:g}–{d.max_mm:g} mm; it must be an ordered range within the pen's "
                    f"depth_max_mm ({v['depth_max_mm']:g} mm).")
    for key in ("pih_face_max_depth_mm", "pih_other_max_depth_mm"):
        if v[key] > v["depth_max_mm"]:
            r.error(f"pih_prone.{key.removeprefix('pih_')}", f"is {v[key]:g} mm; it must not exceed the pen's "
                    f"depth_max_mm ({v['depth_max_mm']:g} mm).")
    if v["pih_passes_max"] > v["passes_max"]:
        r.error("pih_prone.passes_max", f"is {v['pih_passes_max']}; PIH-prone limits must not exceed pen.passes_max "
                f"({v['passes_max']}).")


def _intervals(r: Reader) -> IntervalTables | None:
    vals = dict(
        light_min_days=r.integer("light.min_days", 1, DAYS_MAX),
        needling_min_days=r.integer("needling.min_days", 1, DAYS_MAX),
        no_uv_after_needling_days=r.integer("combined.no_uv_after_needling_days", 0, DAYS_MAX),
        no_needling_after_erythema_days=r.integer("combined.no_needling_after_erythema_days", 0, DAYS_MAX),
        course_sessions_max=r.integer("course.sessions_max", 1, SESSIONS_MAX),
        no_needling_erythema_grade=r.integer("combined.no_needling_erythema_grade", 0, 4),
    )
    sources = {s: r.text(f"{s}.source") or "" for s in ("light", "needling", "combined", "course")}
    return None if r.errors else IntervalTables(sources=sources, **vals)


def _screening(r: Reader) -> tuple[tuple[ScreeningItem, ...] | None, tuple[str, ...]]:
    warn_types = r.choice_list("warning_skin_types", SKIN_TYPES, required=False) or ()
    r.text("warning_skin_types_source")
    raw = r.raw("items")
    if not isinstance(raw, list) or not raw:
        r.error("items", "must be a non-empty list of [[items]] tables.")
        return None, warn_types
    items: list[ScreeningItem] = []
    for i, row in enumerate(raw):
        k = f"items[{i}]"
        sub = r.sub(k, row)
        sub.only_keys(k, ("id", "question", "blocks", "warns", "source"))
        iid, question, source = sub.text(f"{k}.id"), sub.text(f"{k}.question"), sub.text(f"{k}.source")
        blocks = sub.choice_list(f"{k}.blocks", MODALITIES, required=False)
        warns = sub.choice_list(f"{k}.warns", MODALITIES, required=False)
        if not sub.errors and not blocks and not warns:
            sub.error(k, "neither blocks nor warns anything; list a modality in blocks or warns.")
        r.errors.extend(sub.errors)
        if not sub.errors:
            items.append(ScreeningItem(iid, question, blocks, warns, source))
    return tuple(items), warn_types


def _aftercare(r: Reader) -> dict[str, tuple[str, ...]] | None:
    out: dict[str, tuple[str, ...]] = {}
    r.text("source")
    for key in ("always", "light", "needling"):
        raw = r.raw(key)
        if not isinstance(raw, list) or not raw or not all(isinstance(s, str) and s.strip() for s in raw):
            r.error(key, "must be a non-empty list of sentences.")
        else:
            out[key] = tuple(raw)
    return None if r.errors else out

