"""`main.py settings`: print every setting in force and where it came from (default, settings file, command line);
and the command-line options that override the settings file, shared by every command that uses them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from workstation.settings import Settings, load_settings


def share_option(text: str) -> Path:
    """argparse `type` of the options naming the clinic's recordings share (workstation.recording.share_checks,
    imported only when such an option is given: the recording package loads h5py)."""
    from workstation.recording.share_checks import share_option as check

    return check(text)


# dotted setting name -> (option, metavar, type, help)
OPTIONS: dict[str, tuple[str, str, Any, str]] = {
    "paths.protocols": ("--protocols", "DIR", Path, "the clinic's own protocol folder"),
    "paths.store": ("--store", "URL|FILE", str, "the clinic store: an SQLite file, or a URL "
                    "(postgresql+psycopg://account@server/database)"),
    "paths.recordings": ("--recordings", "DIR", Path, "the clinical recordings folder"),
    "paths.clinic_recordings": ("--clinic-recordings", "DIR", share_option, "the clinic's recordings share"),
    "ports.light": ("--light-port", "PORT", str, "serial port of the phototherapy handpiece"),
    "ports.pen": ("--pen-port", "PORT", str, "serial port of the microneedling pen"),
}


def _dest(name: str) -> str:
    return OPTIONS[name][0].lstrip("-").replace("-", "_")


def add_setting_options(parser: argparse.ArgumentParser, names: tuple[str, ...] = tuple(OPTIONS)) -> None:
    """Add the options that override these settings for one command (help says they override the settings file)."""
    parser.set_defaults(_setting_options=names)
    for name in names:
        option, metavar, kind, text = OPTIONS[name]
        parser.add_argument(option, type=kind, metavar=metavar, default=None,
                            help=f"{text} (overrides {name} of the settings file)")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings in force for this command: defaults, the settings file (--settings or the config folder's),
    then the options of `add_setting_options` the user gave. Raises UserError for an invalid settings file."""
    names = getattr(args, "_setting_options", ())
    overrides = {name: (getattr(args, _dest(name)), OPTIONS[name][0]) for name in names}
    store = overrides.get("paths.store", (None, ""))[0]
    if isinstance(store, str) and "://" in store:  # --store URL sets store.url, --store FILE the file
        overrides["paths.store"], overrides["store.url"] = (None, "--store"), (store, "--store")
    return load_settings(getattr(args, "settings", None), overrides)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "settings", help="print the settings in force and where each comes from",
        description="Print every setting in force, where it came from (default, settings file, command line) and "
        "what it is, then the folders Cicatrix uses. The settings file is cicatrix.toml in the config folder (or "
        "--settings FILE); an invalid file is an error naming the file, the key and what is allowed (exit 2). "
        "Give the same options as another command to see what that command would use.")
    add_setting_options(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from workstation import places
    from workstation.logsetup import current_log_file

    settings = settings_from_args(args)
    state = "" if settings.file.is_file() else " (does not exist: every value is a default or an option)"
    print(f"settings file: {settings.file}{state}")
    for line in settings.describe():
        print(line)
    log_file = current_log_file()
    print(f"log file: {log_file or 'none: the log folder is not writable'} (default folder: {places.log_dir()}; "
          "--log-dir DIR changes it)")
    print("training store: a temporary file for each simulated session, removed at its end")
    print(f"training recordings: {places.training_recordings_dir()} (headless `session` default)")
    return 0
