"""Pseudonymous exports. Identifying fields live only in patient_identity and are never
read here."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import date
from typing import Any

from workstation.store.records import (
    Area,
    AreaChange,
    Course,
    MedMeasurement,
    Patient,
    ScreeningAnswer,
    SessionRecord,
)


def export_dict(patient: Patient, screening: Sequence[ScreeningAnswer], meds: Sequence[MedMeasurement],
                areas: Sequence[tuple[Area, Sequence[AreaChange]]],
                courses: Sequence[tuple[Course, Sequence[SessionRecord]]]) -> dict[str, Any]:
    doc = {
        "pseudonym": patient.pseudonym,
        "screening": [dataclasses.asdict(a) for a in screening],
        "meds": [dataclasses.asdict(m) for m in meds],
        "areas": [{**dataclasses.asdict(a), "changes": [dataclasses.asdict(c) for c in changes]}
                  for a, changes in areas],
        "courses": [{"course": dataclasses.asdict(c), "sessions": [dataclasses.asdict(s) for s in sessions]}
                    for c, sessions in courses],
    }
    return json.loads(json.dumps(doc, default=_jsonable))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, date):
        return obj.isoformat()
    raise TypeError(f"{type(obj).__name__} is not serialisable")
