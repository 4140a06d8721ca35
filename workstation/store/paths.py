"""Where the clinic and training databases live by default."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """CICATRIX_DATA_DIR if set, else ~/.local/share/cicatrix."""
    env = os.environ.get("CICATRIX_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".local" / "share" / "cicatrix"


def clinic_db_path() -> Path:
    return data_dir() / "clinic.sqlite3"


def training_db_path() -> Path:
    """Simulation mode's database: a different file, marked 'training' inside, so it can never be the clinic's."""
    return data_dir() / "training.sqlite3"


def default_db_path(*, training: bool) -> Path:
    return training_db_path() if training else clinic_db_path()
