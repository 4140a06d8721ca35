"""Where the clinic and training databases live by default (the platform's user data folder, workstation.places)."""

from __future__ import annotations

from pathlib import Path

from workstation.places import clinic_store_file, data_dir

__all__ = ["clinic_db_path", "data_dir", "default_db_path", "training_db_path"]


def clinic_db_path() -> Path:
    return clinic_store_file()


def training_db_path() -> Path:
    """Simulation's database when no path is given: a different file, marked 'training' inside, so it can never be
    the clinic's. The window and the headless runner use a temporary training store instead."""
    return data_dir() / "training.sqlite3"


def default_db_path(*, training: bool) -> Path:
    return training_db_path() if training else clinic_db_path()
