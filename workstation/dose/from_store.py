"""Plan the next session of a course straight from the clinic store and the protocol library."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from datetime import date

from workstation.dose.engine import plan_session
from workstation.dose.place import light_totals, same_place_sessions
from workstation.dose.plan import SessionPlan
from workstation.errors import UserError
from workstation.progname import command
from workstation.protocols.library import Library
from workstation.store.clinic_store import ClinicStore
from workstation.store.records import SessionRecord


def _own(s: SessionRecord, area_ids: Collection[int]) -> SessionRecord:
    return dataclasses.replace(s, treatments=tuple(t for t in s.treatments if t.area_id in area_ids),
                               responses=tuple(r for r in s.responses if r.area_id in area_ids))


def plan_next_session(store: ClinicStore, library: Library, course_id: int, visit_date: date, *,
                      device_model: str | None = None, cleared_area_ids: Collection[int] = (),
                      irradiance_mw_cm2: float | None = None) -> SessionPlan:
    """Plan the course's next session: every treatment on the same places (all courses, all areas on the same
    region) counts for the interval, same-day and cumulative rules, and the plan carries the patient's UV record."""
    if library.tables is None:
        raise UserError("The reference tables did not load, so no plan can be made; run "
                        f"`{command('protocols check')}` and fix the files it names.")
    with store.snapshot():  # every read from one committed state (the version then matches what was read)
        version = store.course_version(course_id)  # a start saved after this makes the plan stale
        course = store.course(course_id)
        protocol = library.get(course.protocol_id)
        if protocol.version != course.protocol_version:
            raise UserError(f"Course {course_id} was started with {protocol.id} version {course.protocol_version}, "
                            f"but the library holds version {protocol.version}; review the course before planning.")
        patient_areas = store.areas(course.patient_id)
        by_id = {a.id: a for a in patient_areas}
        areas = [by_id[a] if a in by_id else store.area(a) for a in course.area_ids]
        history = store.history(course_id)
        # Only treatments on each course's own areas count (a record written before the store refused others must
        # not sum into this patient's UV record or rules).
        everything = [_own(s, c.area_ids) for c in store.courses(course.patient_id) for s in
                      (history if c.id == course.id else store.history(c.id))]
        screening, meds = store.screening(course.patient_id), store.meds(course.patient_id)
    others = same_place_sessions(course.id, areas, patient_areas, everything)
    plan = plan_session(protocol=protocol, tables=library.tables, course=course, other_history=others,
                        areas=areas, history=history, patient_uv=light_totals(everything),
                        screening=screening, visit_date=visit_date,
                        device_model=device_model, meds=meds,
                        cleared_area_ids=cleared_area_ids, irradiance_mw_cm2=irradiance_mw_cm2)
    return dataclasses.replace(plan, course_version=version)
