"""Plain records of the clinic store. The dose engine reads these; nothing here touches SQLite."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

REPIGMENTATION_BANDS = ("0", "1-5", "6-25", "26-50", "51-75", "76-100")  # Hofer: quartiles, first split finer


@dataclass(frozen=True)
class Patient:
    id: int
    pseudonym: str
    created_at: str


@dataclass(frozen=True)
class Identity:
    """Identifying fields: kept in their own table, never copied into recordings or exports."""

    family_name: str
    given_name: str
    birth_date: date | None = None
    contact: str = ""


@dataclass(frozen=True)
class ScreeningAnswer:
    item_id: str
    answer: bool
    answered_on: date
    answered_by: str
    notes: str = ""


def model_key(device_model: str) -> str:
    """A device model name as compared: spacing collapsed and case folded ("light-uvb308 " is "Light-UVB308")."""
    return " ".join(str(device_model).split()).casefold()


def model_name(device_model: str) -> str:
    """A device model name as stored: trimmed, inner spacing collapsed (case kept for display)."""
    return " ".join(str(device_model).split())


@dataclass(frozen=True)
class MedMeasurement:
    """A minimal erythema dose belongs to one patient and one device model: it does not carry to another device."""

    device_model: str
    med_mj_cm2: float
    measured_on: date
    id: int = 0  # the store's insertion order: of two on the same day, the higher id is the newer (0 = not stored)


@dataclass(frozen=True)
class Area:
    id: int
    patient_id: int
    label: str
    body_region: str
    lesion_type: str
    size_cm2: float
    skin_type: str
    scar_age_months: int | None = None  # the scar's age when the area was recorded
    scar_kind: str | None = None  # a key of seeds/tables/scar_kinds.toml
    closed_on: date | None = None  # an open area's label is unique for its patient


@dataclass(frozen=True)
class AreaChange:
    """One corrected field of an area: the value before and after (as text), why, who and when (UTC, ISO 8601)."""

    area_id: int
    field: str
    old: str
    new: str
    reason: str
    who: str
    at: str


@dataclass(frozen=True)
class Course:
    id: int
    patient_id: int
    protocol_id: str
    protocol_version: int
    planned_sessions: int
    interval_days: int
    started_on: date
    area_ids: tuple[int, ...]


@dataclass(frozen=True)
class Treatment:
    """What was delivered on one area in one session."""

    area_id: int
    modality: str  # "light" or "needling"
    dose_mj_cm2: float | None = None
    depth_mm: float | None = None
    stroke_rate_hz: float | None = None
    passes: int | None = None


@dataclass(frozen=True)
class Response:
    """How one area responded to one session."""

    area_id: int
    erythema_grade: int | None = None  # 0-4, NHS Tayside scale
    blistering: bool = False
    pain_0_10: int | None = None
    repigmentation_band: str | None = None  # one of REPIGMENTATION_BANDS
    erythema_duration_h: float | None = None  # how long the erythema lasted (over 48 h counts as marked)
    notes: str = ""
    swelling: bool = False
    itching: bool = False
    healed_on: date | None = None  # the day a clinician saw the erythema or blisters healed: light may go on


@dataclass(frozen=True)
class SessionRecord:
    id: int
    course_id: int
    session_date: date
    device_model: str | None
    treatments: tuple[Treatment, ...] = ()
    responses: tuple[Response, ...] = ()
    recording_path: str | None = None
    recording_sha256: str | None = None
    state: str = "ended"  # journal: in_progress, completed, partial, aborted, crashed ('ended': before the journal)
    planned_light: tuple[tuple[int, float], ...] = ()  # (area id, target dose mJ/cm²) of the session's plan

    def planned_light_mj_cm2(self, area_id: int) -> float | None:
        """The light dose the session's plan targeted on the area (None: no plan stored, or no light planned)."""
        return next((dose for a, dose in self.planned_light if a == area_id), None)

    def treatment(self, area_id: int, modality: str) -> Treatment | None:
        return next((t for t in self.treatments if t.area_id == area_id and t.modality == modality), None)

    def response(self, area_id: int) -> Response | None:
        return next((r for r in self.responses if r.area_id == area_id), None)
