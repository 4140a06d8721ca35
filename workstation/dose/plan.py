"""What the dose engine proposes: a plan per session, an AreaPlan per treatment area, every number with its bounds and
a sentence saying why. Plans serialise to plain dicts (JSON) so the recorder can store them beside the session."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

ENGINE_VERSION = "dose-engine/1"
def days(n: int) -> str:
    """'1 day', '7 days' (and '-1 days' never arises: callers give counts)."""
    return f"{n} day" if n == 1 else f"{n} days"


OVERRIDABLE = ("target_dose_mj_cm2", "depth_mm", "stroke_rate_hz", "passes")


@dataclass(frozen=True)
class Bounds:
    """The range a clinician may move a proposed number within (protocol, tables and device limits together)."""

    minimum: float
    maximum: float
    unit: str
    step: float | None = None


@dataclass(frozen=True)
class Override:
    field: str
    proposed: float | None
    value: float
    reason: str
    who: str
    at: str  # ISO 8601, UTC


@dataclass(frozen=True)
class AreaPlan:
    area_id: int
    label: str
    body_region: str
    lesion_type: str
    skin_type: str
    modality: str  # "light", "needling", "both" or "none"
    pih_prone: bool
    target_dose_mj_cm2: float | None = None
    depth_mm: float | None = None
    stroke_rate_hz: float | None = None
    passes: int | None = None
    bounds: dict[str, Bounds] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    not_before: dict[str, date] = field(default_factory=dict)  # modality -> first date it is allowed
    overrides: tuple[Override, ...] = ()
    expected_response: str = ""  # in words, from the scar's kind and age (seeds/tables/scar_kinds.toml)

    @property
    def has_light(self) -> bool:
        return self.modality in ("light", "both")

    @property
    def has_needling(self) -> bool:
        return self.modality in ("needling", "both")


@dataclass(frozen=True)
class Refusal:
    reason: str
    first_allowed_date: date


@dataclass(frozen=True)
class Step:
    """One item of the visit's order: light first on intact skin, needling after."""

    modality: str
    area_id: int


@dataclass(frozen=True)
class SessionPlan:
    course_id: int
    protocol_id: str
    protocol_version: int
    visit_date: date
    session_number: int
    areas: tuple[AreaPlan, ...]
    steps: tuple[Step, ...] = ()
    blocks: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    aftercare: tuple[str, ...] = ()  # as planned: every planned modality's lines (aftercare_for: as given)
    notes: tuple[str, ...] = ()  # information, nothing to acknowledge (e.g. the order of the visit)
    refusal: Refusal | None = None
    device_model: str | None = None
    engine_version: str = ENGINE_VERSION
    # The UV record across courses: {"patient": {dose_mj_cm2, exposures}, "areas": {area_id: {...}}}, before today.
    uv_record: dict[str, Any] = field(default_factory=dict)
    expected_minutes: float | None = None  # the expected session time, with its sentence in notes
    # The course's version (store.course_version) the plan was computed from: saving a session's start refuses a plan
    # computed before another start was saved (workstation/store/leases.py). None: not checked.
    course_version: int | None = None
    # The aftercare table's lines by modality ("always", "light", "needling"), for the planned ones: aftercare_for
    aftercare_by_modality: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def aftercare_given(self, started: Iterable[str]) -> list[str]:
        """The aftercare for the modalities whose steps `started` this session (aftercare_for)."""
        return aftercare_for(self.aftercare_by_modality, self.aftercare, started)

    @property
    def refused(self) -> bool:
        return self.refusal is not None

    def nothing_to_treat_reason(self) -> str:
        """Why no area can be treated: the screening blocks and each area's engine sentences that say "No ..."
        (e.g. the PIH rule, an MED too low, the cumulative cap), for a headless runner or a log."""
        parts = list(self.blocks)
        for a in self.areas:
            said = [r for r in a.reasons if r.startswith(("No ", "Nothing"))] or list(a.reasons[-1:])
            parts += [f"area {a.label}: {r}" for r in said]
        return " ".join(parts) or "no area can be treated today."

    def uv_record_lines(self) -> list[str]:
        """The UV record in words (per area, then the patient; every course): before this session, and with today's
        planned light (the target doses of this plan) added, for the plan and the report."""
        from workstation.ui.wording import region_name  # the one display-name table (no Qt in it)

        def words(dose: float, n: int) -> str:
            return f"{dose:g} mJ/cm² in {n} exposure{'s' if n != 1 else ''}"

        out = []
        for a in self.areas:
            rec = self.uv_record.get("areas", {}).get(str(a.area_id))
            if rec is not None:
                today = a.target_dose_mj_cm2 if a.has_light and a.target_dose_mj_cm2 else 0.0
                out.append(f"UV record, {a.label} ({region_name(a.body_region).lower()}, every course): "
                           f"{words(rec['dose_mj_cm2'], rec['exposures'])} before this session; "
                           f"{words(rec['dose_mj_cm2'] + today, rec['exposures'] + (1 if today else 0))} with "
                           "today's plan")
        rec = self.uv_record.get("patient")
        if rec is not None:
            lit = [a.target_dose_mj_cm2 for a in self.areas if a.has_light and a.target_dose_mj_cm2]
            out.append(f"UV record, patient (every area and course): {words(rec['dose_mj_cm2'], rec['exposures'])} "
                       f"before this session; {words(rec['dose_mj_cm2'] + sum(lit), rec['exposures'] + len(lit))} "
                       "with today's plan")
        return out

    def area(self, area_id: int) -> AreaPlan:
        return next(a for a in self.areas if a.area_id == area_id)

    def with_area(self, new: AreaPlan) -> SessionPlan:
        """The same plan with one area's plan replaced (after an override)."""
        return dataclasses.replace(self, areas=tuple(new if a.area_id == new.area_id else a for a in self.areas))

    def execution_steps(self) -> list[dict[str, Any]]:
        """The visit's steps in order (light first, needling after), each as the keyword arguments of the session
        engine's Step: the planned numbers (overrides included) and the limits the interlocks hold them to."""
        out: list[dict[str, Any]] = []
        for step in self.steps:
            a = self.area(step.area_id)
            spec: dict[str, Any] = {"area_id": str(a.area_id), "area_label": a.label, "modality": step.modality}
            if step.modality == "light":
                spec |= {"target_dose_mj_cm2": a.target_dose_mj_cm2,
                         "area_dose_cap_mj_cm2": a.bounds["target_dose_mj_cm2"].maximum}
            else:
                spec |= {"depth_mm": a.depth_mm, "depth_limit_mm": a.bounds["depth_mm"].maximum,
                         "stroke_rate_hz": a.stroke_rate_hz, "passes": a.passes}
            out.append(spec)
        return out

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=_encode))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SessionPlan:
        areas = tuple(
            AreaPlan(**{**a, "bounds": {k: Bounds(**b) for k, b in a["bounds"].items()},
                        "reasons": tuple(a["reasons"]),
                        "not_before": {k: date.fromisoformat(v) for k, v in a["not_before"].items()},
                        "overrides": tuple(Override(**o) for o in a["overrides"])})
            for a in d["areas"])
        refusal = d.get("refusal")
        return cls(**{**d, "visit_date": date.fromisoformat(d["visit_date"]), "areas": areas,
                      "steps": tuple(Step(**s) for s in d["steps"]), "blocks": tuple(d["blocks"]),
                      "warnings": tuple(d["warnings"]), "aftercare": tuple(d["aftercare"]), "notes": tuple(d.get("notes", ())),
                      "aftercare_by_modality": {k: tuple(v) for k, v in d.get("aftercare_by_modality", {}).items()},
                      "refusal": Refusal(refusal["reason"], date.fromisoformat(refusal["first_allowed_date"]))
                      if refusal else None})


NOTHING_GIVEN_AFTERCARE = "No treatment was started this session, so it needs no aftercare."


def aftercare_for(by_modality: Mapping[str, Sequence[str]], planned: Sequence[str], started: Iterable[str]) -> list[str]:
    """The aftercare to give after a session: the table's "always" lines and those of each modality ("light",
    "needling") whose step started, as planned or not done (a step stopped part-way may have given some: the safe
    side). `by_modality`: SessionPlan.aftercare_by_modality (or the recorded plan's); a plan without it (recorded
    before it was kept) gives `planned`, its aftercare whole. Lines: seeds/tables/aftercare.toml (CLINICAL.md)."""
    def lines(value: Any) -> list[str]:  # a recorded plan is read as it is: a value not a list gives no line
        return [str(line) for line in value] if isinstance(value, list | tuple) else []

    started = set(started)
    if not isinstance(by_modality, Mapping) or not by_modality:
        return lines(planned)
    if not started:
        return [NOTHING_GIVEN_AFTERCARE]
    return [*lines(by_modality.get("always")), *(line for m in ("light", "needling") if m in started
                                                 for line in lines(by_modality.get(m)))]


def _encode(obj: Any) -> Any:
    if isinstance(obj, date):
        return obj.isoformat()
    raise TypeError(f"{type(obj).__name__} is not serialisable")
