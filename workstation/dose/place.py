"""An area is a place on the body, once: the interval, same-day and cumulative rules count every treatment the
patient had on that body region, in every course, not only under the area's own id. And the patient's UV record
across courses ("UV pass", CLINICAL.md: UV record across courses): cumulative light dose and number of exposures per
area and for the patient. Pure functions over store records."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from workstation.store.records import Area, SessionRecord


@dataclass(frozen=True)
class UvTotals:
    dose_mj_cm2: float = 0.0
    exposures: int = 0

    def plus(self, dose_mj_cm2: float) -> UvTotals:
        return UvTotals(self.dose_mj_cm2 + dose_mj_cm2, self.exposures + 1)


def same_place_sessions(course_id: int, course_areas: Sequence[Area], patient_areas: Iterable[Area],
                        sessions: Iterable[SessionRecord]) -> list[SessionRecord]:
    """Every other treatment on the region of each of the course's areas, relabelled with that area's id: sessions of
    the patient's other courses, and treatments of the course's other areas on the same region. A course area's own
    treatments in its own course are left out (they are the course history)."""
    region_of = {a.id: a.body_region for a in patient_areas}
    out: list[SessionRecord] = []
    for s in sessions:
        treatments, responses = [], []
        own = s.course_id == course_id
        for a in course_areas:
            ids = {i for i, region in region_of.items() if region == a.body_region and not (own and i == a.id)}
            treatments += [dataclasses.replace(t, area_id=a.id) for t in s.treatments if t.area_id in ids]
            responses += [dataclasses.replace(r, area_id=a.id) for r in s.responses if r.area_id in ids]
        if treatments:
            out.append(dataclasses.replace(s, treatments=tuple(treatments), responses=tuple(responses)))
    return out


def light_totals(sessions: Iterable[SessionRecord], area_id: int | None = None) -> UvTotals:
    """Cumulative light dose (mJ/cm²) and number of exposures in `sessions`, on `area_id` or on any area."""
    total = UvTotals()
    for s in sessions:
        for t in s.treatments:
            if t.modality == "light" and t.dose_mj_cm2 is not None and (area_id is None or t.area_id == area_id):
                total = total.plus(float(t.dose_mj_cm2))
    return total
