"""The records a loaded protocol library is made of. No file reading here (see schema.py and tables.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SKIN_TYPES = ("I", "II", "III", "IV", "V", "VI")
LESION_TYPES = (
    "hypopigmented_scar",
    "striae_alba",
    "atrophic_scar",
    "hypopigmented_atrophic_scar",
    "pih",
    "hyperpigmented_scar",
)
# CLINICAL.md: UV is never planned on a PIH / hyperpigmented area, whatever a protocol file says.
UV_FORBIDDEN_LESIONS = frozenset({"pih", "hyperpigmented_scar"})
MODALITIES = ("light", "needling")
LIGHT_START_METHODS = ("skin_type_table", "med_fraction", "med_minus", "fixed")
ESCALATION_METHODS = ("percent", "skin_type_table")
DEPTH_CHOICES = ("lower", "middle", "upper")


@dataclass(frozen=True)
class ProtocolError:
    """One problem in one file: which file, which key, what is wrong (a sentence)."""

    path: Path
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: {self.key}" if self.key else str(self.path)
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Source:
    key: str
    citation: str
    team_default: bool = False


@dataclass(frozen=True)
class CourseRules:
    sessions: int
    sessions_min: int
    sessions_max: int | None
    interval_days: int
    interval_min_days: int
    interval_max_days: int


@dataclass(frozen=True)
class LightRules:
    start_method: str
    med_fraction: float | None
    med_minus_mj_cm2: float | None
    fixed_start_mj_cm2: float | None
    escalation_method: str
    escalation_percent: float
    cumulative_cap_mj_cm2: float
    min_interval_days: int
    repeat_dose_skin_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class NeedlingRules:
    depth_choice: str
    stroke_rate_hz: float
    stroke_rate_min_hz: float
    stroke_rate_max_hz: float
    passes: int
    passes_max: int
    min_interval_days: int
    always_pih_prone_limits: bool = False


@dataclass(frozen=True)
class Protocol:
    """One protocol file, validated. `cite` maps 'section.key' to the key of a source in `sources`."""

    id: str
    version: int
    title: str
    summary: str
    lesion_types: tuple[str, ...]
    modalities: tuple[str, ...]
    sources: tuple[Source, ...]
    course: CourseRules
    light: LightRules | None
    needling: NeedlingRules | None
    cite: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    origin: str = "factory"  # "factory" or "clinic"

    def source_for(self, dotted_key: str) -> Source | None:
        key = self.cite.get(dotted_key)
        return next((s for s in self.sources if s.key == key), None)

    def citation(self, dotted_key: str) -> str:
        """A short "(source)" suffix for reasons; team defaults say so."""
        s = self.source_for(dotted_key)
        if s is None:
            return ""
        return f" (team default: {s.citation})" if s.team_default else f" ({s.citation})"
