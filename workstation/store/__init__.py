"""The clinic store (SQLite): patients under pseudonyms, screening, areas, courses, sessions, responses, recordings."""

from workstation.store.clinic_store import ClinicStore
from workstation.store.migrations import MIGRATIONS, migrate
from workstation.store.paths import clinic_db_path, data_dir, default_db_path, training_db_path
from workstation.store.records import (
    REPIGMENTATION_BANDS,
    Area,
    AreaChange,
    Course,
    Identity,
    MedMeasurement,
    Patient,
    Response,
    ScreeningAnswer,
    SessionRecord,
    Treatment,
)
from workstation.store.upgrade import LATEST_VERSION

__all__ = [
    "LATEST_VERSION", "MIGRATIONS", "REPIGMENTATION_BANDS", "Area", "AreaChange", "ClinicStore", "Course", "Identity",
    "MedMeasurement", "Patient", "Response", "ScreeningAnswer", "SessionRecord", "Treatment", "clinic_db_path",
    "data_dir", "default_db_path", "migrate", "training_db_path",
]
