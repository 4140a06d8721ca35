"""Where Cicatrix keeps its files by default, in the platform's standard places (platformdirs): on Linux the XDG
folders, so XDG_DATA_HOME, XDG_CONFIG_HOME and XDG_STATE_HOME move them.

| what | default on Linux |
|---|---|
| clinic store, recordings | ~/.local/share/cicatrix/ (clinic.sqlite3, recordings/) |
| settings file | ~/.config/cicatrix/cicatrix.toml |
| log and crash trace | ~/.local/state/cicatrix/log/ |

The settings file (workstation.settings) changes the store, recordings and protocol folders; a command-line option
changes them for one command. The training store of simulation is a temporary file, removed at the end."""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP_NAME = "cicatrix"
SETTINGS_FILE_NAME = "cicatrix.toml"
LOG_FILE_NAME = "cicatrix.log"
CRASH_FILE_NAME = "crash.log"


def data_dir() -> Path:
    """The user data folder (clinic store, clinic recordings)."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    """The user configuration folder (the settings file)."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def log_dir() -> Path:
    """The user log folder (the rotating log and the crash trace)."""
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def settings_file() -> Path:
    return config_dir() / SETTINGS_FILE_NAME


def clinic_store_file() -> Path:
    return data_dir() / "clinic.sqlite3"


def recordings_dir() -> Path:
    """Clinical recordings: `<this>/YYYY-MM-DD/<session-uuid>.h5`, each report beside its recording."""
    return data_dir() / "recordings"


def training_recordings_dir() -> Path:
    """Recordings of simulated sessions (headless `session`): kept apart from the clinic's."""
    return data_dir() / "training-recordings"
