"""Plan the next session of a course straight from the clinic store and the protocol library."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from workstation.dose.engine import plan_session
from workstation.dose.plan import SessionPlan
from workstation.errors import UserError
from workstation.protocols.library import Library
from workstation.store.clinic_store import ClinicStore


def plan_next_session(store: ClinicStore, library: Library, course_id: int, visit_date: date, *,
                      device_model: str | None = None, cleared_area_ids: Collection[int] = ()) -> SessionPlan:
    if library.tables is None:
        raise UserError("The reference tables did not load, so no plan can be made; run "
                        "`python main.py protocols check` and fix the files it names.")
    course = store.course(course_id)
    protocol = library.get(course.protocol_id)
    if protocol.version != course.protocol_version:
        raise UserError(f"Course {course_id} was started with {protocol.id} version {course.protocol_version}, but "
                        f"the library holds version {protocol.version}; review the course before planning.")
    others = [s for c in store.courses(course.patient_id) if c.id != course.id and set(c.area_ids) & set(course.area_ids)
              for s in store.history(c.id)]
    return plan_session(protocol=protocol, tables=library.tables, course=course, other_history=others,
                        areas=[store.area(a) for a in course.area_ids], history=store.history(course_id),
                        screening=store.screening(course.patient_id), visit_date=visit_date,
                        device_model=device_model, meds=store.meds(course.patient_id),
                        cleared_area_ids=cleared_area_ids)
