"""Rows of the store (by column name) to store records."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from workstation.store.records import Area, Course, Response, SessionRecord, Treatment


def area_from(r: Mapping[str, Any]) -> Area:
    return Area(r["id"], r["patient_id"], r["label"], r["body_region"], r["lesion_type"], r["size_cm2"],
                r["skin_type"], r["scar_age_months"], r["scar_kind"],
                date.fromisoformat(r["closed_on"]) if r["closed_on"] else None)


def course_from(r: Mapping[str, Any], area_ids: Sequence[int]) -> Course:
    return Course(r["id"], r["patient_id"], r["protocol_id"], r["protocol_version"], r["planned_sessions"],
                  r["interval_days"], date.fromisoformat(r["started_on"]), tuple(area_ids))


def session_from(s: Mapping[str, Any], treatments: Sequence[Mapping[str, Any]], responses: Sequence[Mapping[str, Any]]) -> SessionRecord:
    return SessionRecord(
        id=s["id"], course_id=s["course_id"], session_date=date.fromisoformat(s["session_date"]),
        device_model=s["device_model"],
        treatments=tuple(Treatment(t["area_id"], t["modality"], t["dose_mj_cm2"], t["depth_mm"], t["stroke_rate_hz"],
                                   t["passes"]) for t in treatments),
        responses=tuple(Response(r["area_id"], r["erythema_grade"], bool(r["blistering"]), r["pain_0_10"],
                                 r["repigmentation_band"], r["erythema_duration_h"], r["notes"], bool(r["swelling"]),
                                 bool(r["itching"]),
                                 date.fromisoformat(r["healed_on"]) if r["healed_on"] else None)
                        for r in responses),
        recording_path=s["path"], recording_sha256=s["sha256"], state=s["state"],
        planned_light=_planned_light(s["plan_json"] if "plan_json" in s.keys() else None),
    )


def _planned_light(plan_json: str | None) -> tuple[tuple[int, float], ...]:
    """(area id, target dose mJ/cm²) for each area the stored plan lit; () when the plan is absent or unreadable."""
    try:
        areas = json.loads(plan_json or "{}").get("areas", [])
        return tuple((int(a["area_id"]), float(a["target_dose_mj_cm2"])) for a in areas
                     if a.get("target_dose_mj_cm2"))
    except (ValueError, TypeError, KeyError, AttributeError):
        return ()


SHA256 = re.compile(r"^[0-9a-f]{64}$")
"""A SHA-256 digest as the store keeps it: 64 lowercase hex digits."""


def now_text() -> str:
    """Now, UTC, as the store writes times (ISO 8601 to the second, with its offset)."""
    return datetime.now(UTC).isoformat(timespec="seconds")
