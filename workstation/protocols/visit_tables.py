"""Reference tables about the visit rather than the dose: scar kinds with the expected response in words
(seeds/tables/scar_kinds.toml) and the expected session time (seeds/tables/session_time.toml)."""

from __future__ import annotations

from dataclasses import dataclass, field

from workstation.protocols.model import LESION_TYPES, UV_FORBIDDEN_LESIONS
from workstation.protocols.reader import Reader


@dataclass(frozen=True)
class ScarKinds:
    """Scar kinds an area may be recorded as, with the expected response in words, and the age bands (months)."""

    labels: dict[str, str]
    expected: dict[str, str]
    newer_max_months: int
    older_min_months: int
    sources: dict[str, str]
    lesions: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def fits(self, kind: str, lesion_type: str) -> bool:
        """Whether a scar of `kind` can be recorded on an area of `lesion_type` (the kind's `lesions`)."""
        return lesion_type in self.lesions.get(kind, ())

    def forbids_uv(self, kind: str | None) -> bool:
        """A kind whose lesions all forbid UV (pih_mark) blocks UV like a PIH lesion (CLINICAL.md)."""
        return bool(kind) and bool(self.lesions.get(kind)) and set(self.lesions[kind]) <= UV_FORBIDDEN_LESIONS

    def expected_response(self, kind: str | None, age_months: int | None) -> str:
        """The plan's sentence on what response to expect for a scar of this kind and age ('' if neither is known)."""
        parts = []
        if kind in self.labels:
            parts.append(f"As a {self.labels[kind]}, expect {self.expected[kind]}")
        if age_months is not None:
            if age_months <= self.newer_max_months:
                band = "a newer scar, which responds best"
            elif age_months >= self.older_min_months:
                band = "an older scar, which responds less"
            else:
                band = "neither new nor old"
            parts.append(f"at {age_months} months it is {band} ({self.sources['age']})")
        if not parts:
            return ""
        return "; ".join(parts)[0].upper() + "; ".join(parts)[1:] + f" ({self.sources['kinds']})."


@dataclass(frozen=True)
class SessionTime:
    """What a visit takes, so the clinic can book it: set-up, light positioning per area, needling per cm² and pass
    (team defaults), the default irradiance when the device's calibrated one is not known, and the seed's 15–30 min."""

    booking_min_minutes: float
    booking_max_minutes: float
    setup_minutes: float
    light_positioning_s_per_area: float
    needling_s_per_cm2_per_pass: float
    default_irradiance_mw_cm2: float
    sources: dict[str, str]


def read_scar_kinds(r: Reader) -> ScarKinds | None:
    sources = {"kinds": r.text("source") or "", "age": r.text("age.source") or ""}
    newer = r.integer("age.newer_max_months", 0, 1200)
    older = r.integer("age.older_min_months", 0, 1200)
    labels: dict[str, str] = {}
    expected: dict[str, str] = {}
    lesions: dict[str, tuple[str, ...]] = {}
    for kind in r.table("kinds") or {}:
        label, words = r.text(f"kinds.{kind}.label"), r.text(f"kinds.{kind}.expected")
        fits = r.choice_list(f"kinds.{kind}.lesions", LESION_TYPES)
        if label and words and fits:
            labels[kind], expected[kind], lesions[kind] = label, words, fits
    if newer is not None and older is not None and newer >= older:
        r.error("age.older_min_months", f"is {older}; it must be above newer_max_months ({newer}).")
    if r.errors or newer is None or older is None:
        return None
    return ScarKinds(labels, expected, newer, older, sources, lesions)


def read_session_time(r: Reader) -> SessionTime | None:
    sources = {"booking": r.text("source") or "", "steps": r.text("steps.source") or "",
               "light": r.text("light.source") or ""}
    vals = dict(
        booking_min_minutes=r.number("booking_min_minutes", 1, 240),
        booking_max_minutes=r.number("booking_max_minutes", 1, 240),
        setup_minutes=r.number("steps.setup_minutes", 0, 120),
        light_positioning_s_per_area=r.number("steps.light_positioning_s_per_area", 0, 600),
        needling_s_per_cm2_per_pass=r.number("steps.needling_s_per_cm2_per_pass", 0, 600),
        default_irradiance_mw_cm2=r.number("light.default_irradiance_mw_cm2", 1, 1000),
    )
    if r.errors:
        return None
    return SessionTime(sources=sources, **{k: float(v) for k, v in vals.items()})
