"""plan_session: for each area of the next session, what to do and why. Pure: it reads records, never the store.
Order of the rules: the protocol and the lesion (PIH: never UV), the body region, screening, the interval rules, then
the numbers (light.py, needling.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from datetime import date

from workstation.dose.light import DEVICE_DOSE_MJ_CM2, med_elsewhere, propose_light
from workstation.dose.needling import propose_needling
from workstation.dose.place import UvTotals, light_totals
from workstation.dose.plan import AreaPlan, Refusal, SessionPlan, Step
from workstation.dose.rules import evaluate_screening, first_allowed, pih_prone_why
from workstation.dose.visit_time import expected_minutes
from workstation.errors import UserError
from workstation.protocols.model import UV_FORBIDDEN_LESIONS, Protocol
from workstation.protocols.tables import LightTables, Tables
from workstation.store.records import Area, Course, MedMeasurement, ScreeningAnswer, SessionRecord
from workstation.terminal import quoted

ORDER_REASON = "Light first on intact skin, needling after (team default, CLINICAL.md: combining both on one patient)."


def plan_session(*, protocol: Protocol, tables: Tables, course: Course, areas: Sequence[Area],
                 history: Sequence[SessionRecord], screening: Sequence[ScreeningAnswer], visit_date: date,
                 device_model: str | None = None, meds: Sequence[MedMeasurement] = (),
                 cleared_area_ids: Collection[int] = (),
                 other_history: Sequence[SessionRecord] = (),
                 device_dose_range_mj_cm2: tuple[float, float] = DEVICE_DOSE_MJ_CM2,
                 patient_uv: UvTotals | None = None, irradiance_mw_cm2: float | None = None) -> SessionPlan:
    """Propose the plan for the session on `visit_date`. `history` is the course's past sessions (doses follow
    them); `other_history` holds every other treatment on the same places (other courses, other areas on the same
    region, relabelled with the course area's id: dose.place.same_place_sessions), which counts for the interval,
    combination and cumulative-cap rules. `patient_uv` is the patient's light over every course (the UV record).
    `irradiance_mw_cm2` (the light device's calibrated irradiance) gives the expected session time. `cleared_area_ids` are the areas whose erythema or blisters from the last
    light session the clinician has seen healed today. `device_dose_range_mj_cm2` is the light device's settable
    dose range (an MED whose first-dose bound falls below its minimum blocks light, CLINICAL.md)."""
    if protocol.id != course.protocol_id:
        raise UserError(f"The course follows protocol {course.protocol_id}, not {protocol.id}; load the right one.")
    history = sorted(history, key=lambda s: s.session_date)
    if history and visit_date < history[-1].session_date:
        raise UserError(f"The visit date {visit_date.isoformat()} is before the last session of this course "
                        f"({history[-1].session_date.isoformat()}); check the date.")
    timeline = sorted([*history, *other_history], key=lambda s: s.session_date)
    screen = evaluate_screening(tables, screening, protocol.modalities)
    blocks = [s for m in protocol.modalities for s in screen.blocked.get(m, [])]
    warnings = list(screen.warnings)
    plans: list[AreaPlan] = []
    too_early: list[tuple[date, str]] = []
    timing_ok = False
    by_id = {a.id: a for a in areas}
    uv_areas: dict[str, dict[str, float]] = {}
    for area_id in course.area_ids:
        area = by_id.get(area_id)
        if area is None:
            raise UserError(f"Area {area_id} of course {course.id} was not given to the planner.")
        why_pih = pih_prone_why(protocol, tables, area, screen.pih_history)
        elsewhere = light_totals(other_history, area.id)
        here = light_totals(history, area.id)
        uv_areas[str(area.id)] = {"dose_mj_cm2": here.dose_mj_cm2 + elsewhere.dose_mj_cm2,
                                  "exposures": here.exposures + elsewhere.exposures}
        plan, early, ok = _plan_area(protocol, tables, course, area, history, timeline, screen.blocked, why_pih,
                                     visit_date, device_model, meds, area.id in cleared_area_ids,
                                     device_dose_range_mj_cm2, elsewhere.dose_mj_cm2)
        if tables.scar_kinds is not None:
            plan = dataclasses.replace(plan, expected_response=tables.scar_kinds.expected_response(
                area.scar_kind, area.scar_age_months))
        plans.append(plan)
        too_early.extend(early)
        timing_ok = timing_ok or ok
        last = next((s.response(area.id) for s in reversed(history) if s.response(area.id)), None)
        if last is not None and last.repigmentation_band == "76-100":
            warnings.append(f"Area {area.label}: repigmentation reached the 76–100 % band. The excimer trial stopped "
                            "at 100 % visual correction and pigment declined over 6 months, so maintenance sessions "
                            "follow (Alexiades-Armenakas et al., Arch Dermatol 2004): review whether to stop or "
                            "move to maintenance.")
        elsewhere_med = med_elsewhere(meds, device_model)
        if elsewhere_med and protocol.light is not None:
            warnings.append(f"Area {area.label}: {elsewhere_med}; no light is planned on it until then.")
        if area.skin_type in tables.warning_skin_types:
            warnings.append(f"Area {area.label}: skin type {area.skin_type} needs care (CLINICAL.md screening "
                            "warnings); acknowledge before treating.")
    uv = {"areas": uv_areas}
    if patient_uv is not None:
        uv["patient"] = {"dose_mj_cm2": patient_uv.dose_mj_cm2, "exposures": patient_uv.exposures}
    warnings.extend(uv_warnings(tables.light, plans, uv))
    refusal = None
    if too_early and not timing_ok:
        first, why = min(too_early, key=lambda e: e[0])
        # The date is the refusal's own field: every reader prints it once (runner, plan view, PDF).
        refusal = Refusal(f"Too early: {why}.", first)
        plans = [_none(p, "Nothing is planned: the session is too early (see the refusal).") for p in plans]
    number = sum(1 for s in history if s.treatments) + 1  # a session that delivered nothing is not counted
    if number > course.planned_sessions:
        warnings.append(f"This is session {number} of a course planned for {course.planned_sessions}; review the "
                        "course before going on.")
    steps = tuple([Step("light", p.area_id) for p in plans if p.has_light]
                  + [Step("needling", p.area_id) for p in plans if p.has_needling])
    by_modality = {"always": tuple(tables.aftercare["always"])}
    if any(p.has_light for p in plans):
        by_modality["light"] = tuple(tables.aftercare["light"])
    if any(p.has_needling for p in plans):
        by_modality["needling"] = tuple(tables.aftercare["needling"])
    aftercare = [line for lines in by_modality.values() for line in lines]
    notes = [ORDER_REASON] if any(p.has_light for p in plans) and any(p.has_needling for p in plans) else []
    minutes = None
    if tables.session_time is not None and steps:
        minutes, why = expected_minutes(plans, {a.id: a.size_cm2 for a in areas}, tables.session_time,
                                        irradiance_mw_cm2)
        notes.append(why)
    if screening:
        dates = sorted(a.answered_on for a in screening)
        notes.append(f"Screening answers on file date from {dates[0].isoformat()} to {dates[-1].isoformat()}; "
                     "confirm nothing has changed since.")
    return SessionPlan(course_id=course.id, protocol_id=protocol.id, protocol_version=protocol.version,
                       visit_date=visit_date, session_number=number, areas=tuple(plans), steps=steps,
                       blocks=tuple(blocks), warnings=tuple(warnings), aftercare=tuple(aftercare), notes=tuple(notes),
                       aftercare_by_modality=by_modality,
                       refusal=refusal,
                       device_model=device_model, uv_record=uv, expected_minutes=minutes)


def _none(plan: AreaPlan, reason: str) -> AreaPlan:
    return AreaPlan(plan.area_id, plan.label, plan.body_region, plan.lesion_type, plan.skin_type, "none",
                    plan.pih_prone, reasons=(*plan.reasons, reason), not_before=plan.not_before)


def _plan_area(p: Protocol, t: Tables, course: Course, area: Area, history: Sequence[SessionRecord],
               timeline: Sequence[SessionRecord], blocked: dict[str, list[str]], why_pih: str, visit_date: date, device_model: str | None,
               meds: Sequence[MedMeasurement], cleared: bool,
               dose_range: tuple[float, float], elsewhere_mj_cm2: float) -> tuple[AreaPlan, list[tuple[date, str]], bool]:
    reasons: list[str] = []
    wanted = list(p.modalities)
    pih_kind = t.scar_kinds is not None and t.scar_kinds.forbids_uv(area.scar_kind)
    if "light" in wanted and (area.lesion_type in UV_FORBIDDEN_LESIONS or pih_kind):
        wanted.remove("light")
        what = "classified PIH or hyperpigmented" if not pih_kind else f"recorded as scar kind {area.scar_kind}"
        reasons.append(f"No light: the area is {what}, and UV stimulates melanin; UV is never planned on such an "
                       "area (CLINICAL.md).")
    if area.lesion_type not in p.lesion_types:
        reasons.append(f"Nothing planned: protocol {p.id} is not for {area.lesion_type.replace('_', ' ')}; "
                       "choose a protocol that lists this lesion type (for PIH: gentle needling).")
        wanted = []
    region = t.needling.regions.get(area.body_region)
    if region is None and "needling" in wanted:
        wanted.remove("needling")
        reasons.append(f"No needling: body region {quoted(area.body_region)} has no depth in the tables; record the area "
                       f"with one of {', '.join(t.needling.regions)}.")
    elif region is not None and not region.needling_allowed and "needling" in wanted:
        wanted.remove("needling")
        reasons.append(f"No needling on the {area.body_region}: never within the orbital rim ({t.needling.sources['regions']}).")
    for m in list(wanted):
        if blocked.get(m):
            wanted.remove(m)
            reasons.append(f"No {m}: blocked by screening (see the plan's blocks).")
    early: list[tuple[date, str]] = []
    not_before: dict[str, date] = {}
    allowed: list[str] = []
    for m in wanted:
        first, why = first_allowed(p, t, area, timeline, m, bool(why_pih))
        if first is not None and visit_date < first:
            early.append((first, f"on area {area.label}, {why}"))
            not_before[m] = first
            reasons.append(f"No {m} today: {why}; first allowed on {first.isoformat()}.")
        else:
            allowed.append(m)
    kw: dict = {"bounds": {}}
    if "light" in allowed:
        face = region.face if region is not None else True
        if region is None:
            reasons.append(f"Body region {quoted(area.body_region)} is not in the tables: the face cap is applied.")
        lr = propose_light(p=p, t=t.light, area=area, face=face, history=history, meds=meds,
                           device_model=device_model, visit_date=visit_date,
                           course_interval_days=course.interval_days, cleared=cleared,
                           device_dose_range_mj_cm2=dose_range, elsewhere_mj_cm2=elsewhere_mj_cm2)
        reasons.extend(lr.reasons)
        if lr.dose_mj_cm2 is None:
            allowed.remove("light")
        else:
            kw["target_dose_mj_cm2"] = lr.dose_mj_cm2
            kw["bounds"]["target_dose_mj_cm2"] = lr.bounds
            reasons.append("Sun-avoidance: avoid sun on the area for 24–48 h and use sunscreen (see aftercare).")
    if "needling" in allowed:
        assert region is not None
        nr = propose_needling(p=p, t=t.needling, area=area, region=region, pih_prone=bool(why_pih), pih_why=why_pih)
        reasons.extend(nr.reasons)
        kw |= {"depth_mm": nr.depth_mm, "stroke_rate_hz": nr.stroke_rate_hz, "passes": nr.passes}
        kw["bounds"] |= nr.bounds
    modality = {0: "none", 2: "both"}.get(len(allowed), allowed[0] if allowed else "none")
    plan = AreaPlan(area.id, area.label, area.body_region, area.lesion_type, area.skin_type, modality,
                    bool(why_pih), reasons=tuple(reasons), not_before=not_before, **kw)
    return plan, early, len(wanted) > len(early)


def uv_warnings(t: LightTables, plans: Sequence[AreaPlan], uv: dict) -> list[str]:
    """Warnings when the UV record, with today's planned light, reaches the team-default thresholds
    (seeds/tables/light_dosing.toml [cumulative]; CLINICAL.md: no publication gives a lifetime number)."""
    out: list[str] = []
    src = f"team default: {t.sources['cumulative']}"
    today = 0.0
    for p in plans:
        rec = uv["areas"].get(str(p.area_id), {"dose_mj_cm2": 0.0, "exposures": 0})
        planned = p.target_dose_mj_cm2 or 0.0
        today += planned
        dose, n = rec["dose_mj_cm2"] + planned, rec["exposures"] + (1 if p.has_light else 0)
        if dose >= t.area_warn_mj_cm2 or n >= t.area_warn_exposures:
            out.append(f"UV record, area {p.label}: {dose:g} mJ/cm² in {n} exposures over every course on the "
                       f"{p.body_region} with today's plan, at or above the warning level of {t.area_warn_mj_cm2:g} "
                       f"mJ/cm² or {t.area_warn_exposures} exposures ({src}); review before treating.")
    patient = uv.get("patient")
    if patient is not None:
        lit = sum(1 for p in plans if p.has_light)
        dose, n = patient["dose_mj_cm2"] + today, patient["exposures"] + lit
        if dose >= t.patient_warn_mj_cm2 or n >= t.patient_warn_exposures:
            out.append(f"UV record, patient: {dose:g} mJ/cm² in {n} exposures over every course with today's plan, "
                       f"at or above the warning level of {t.patient_warn_mj_cm2:g} mJ/cm² or "
                       f"{t.patient_warn_exposures} exposures ({src}); review before treating.")
    return out
