"""Planning a visit from what the store has committed, the same for the window, the headless runner and
bench/store.py (no Qt, no devices): the dose engine's plan through the dosimetry QA hook, the areas whose healing was
confirmed (released for light) or is still awaited, the training scenario's patient and plan, and the responses of a
previous session entered at this visit."""

from __future__ import annotations

import datetime as dt
from typing import Any

from workstation.errors import UserError


def awaiting_healing(store, library, course_id: int) -> list[tuple[int, int, Any]]:
    """(session id, area id, response) for each area whose last light session left erythema or blisters that hold
    light back (the dose engine's own rules) and whose healing nobody has confirmed yet."""
    from workstation.dose.light import is_blister, is_marked

    t = library.tables.light
    last: dict[int, tuple[int, Any]] = {}
    for rec in store.history(course_id):
        for tr in rec.treatments:
            if tr.modality == "light":
                last[tr.area_id] = (rec.id, rec.response(tr.area_id))
    return [(sid, area_id, r) for area_id, (sid, r) in last.items()
            if r is not None and r.healed_on is None and (is_blister(r, t) or is_marked(r, t))]


def record_previous_responses(store, session_id: int, responses: list) -> int:
    """Save a previous session's responses: new rows are added; for an area that already has its response, a
    ticked "healed" confirms healing (the earlier scores stay as they were entered)."""
    have = {r.area_id for rec in store.history(store.course_of_session(session_id)) if rec.id == session_id
            for r in rec.responses}
    n = 0
    for r in responses:
        if r.area_id in have:
            if r.healed_on is not None:
                store.confirm_healed(session_id, r.area_id, r.healed_on)
                n += 1
            continue
        store.add_response(session_id, r)
        n += 1
    return n


def cleared_areas(store, course_id: int) -> set[int]:
    """Areas whose last response confirms healing (healed_on set): the next plan may put light on them again."""
    cleared: set[int] = set()
    latest: dict[int, Any] = {}
    for rec in store.history(course_id):
        for r in rec.responses:
            latest[r.area_id] = r
    for area_id, r in latest.items():
        if r.healed_on is not None:
            cleared.add(area_id)
    return cleared


def plan_visit(store, library, course_id: int, visit_date: dt.date, *, device_model: str | None,
               light: Any = None) -> Any:
    """The dose engine's plan for a course's visit on `visit_date` from what the store has committed (areas whose
    healing was confirmed released for light), through the dosimetry QA hook for the connected `light` (None: no
    device, headless). The window, the runner and bench/store.py plan here."""
    from workstation.dose import plan_next_session
    from workstation.store.calibration import apply_to_plan

    with store.snapshot():  # the plan's reads from one committed state; the hook below may write (a device)
        plan = plan_next_session(store, library, course_id, visit_date, device_model=device_model,
                                 cleared_area_ids=cleared_areas(store, course_id))
    return apply_to_plan(store, light, plan, visit_date)


def prepare_training_plan(scenario, store, library, device_model: str):
    """The scenario's patient in the training store (found, or entered with screening, MED, areas and a course the
    first time), and today's plan. Returns (course, plan)."""
    protocol = library.get(scenario.protocol_id)
    today = dt.date.today()
    patient = store.find_patient(scenario.pseudonym) or store.create_patient(scenario.pseudonym)
    known = {item.id for item in library.tables.screening}
    unknown = set(scenario.screening_yes) - known
    if unknown:
        raise UserError(f"{scenario.path.name}: unknown screening item(s) {', '.join(sorted(unknown))}; "
                        f"known: {', '.join(sorted(known))}.")
    for item in library.tables.screening:
        store.add_screening_answer(patient.id, item.id, item.id in scenario.screening_yes, today,
                                   scenario.operator_id)
    if scenario.med_mj_cm2:
        store.add_med(patient.id, device_model, scenario.med_mj_cm2, today)
    # An area is a place on the body, once: a scenario run again against a store reuses the patient's areas and
    # course (the scenario's areas have unique labels, each its own place).
    areas = [store.find_or_create_area(patient.id, a.area_id, a.region, a.lesion, a.size_cm2, scenario.skin_type_roman,
                                       scar_age_months=a.scar_age_months, scar_kind=a.scar_kind, distinct_place=True)
             for a in scenario.areas]
    course = store.find_or_create_course(patient.id, protocol, [a.id for a in areas], today)
    return course, plan_visit(store, library, course.id, today, device_model=device_model)
