"""The settings in force: built-in defaults (the platform's standard places, workstation.places), then the settings
file `cicatrix.toml` in the config folder, then the command line, each later one winning. Every value remembers
where it came from, so the `settings` command can say why it is what it is.

The file is TOML, read with tomllib and checked strictly: an unknown key, a wrong type or a value out of range is an
error naming the file, the key and what is allowed, and nothing is used from a file with an error (a typo must not
fall back silently to a default). Relative paths in the file are taken from the file's own folder (also for `--settings FILE` given as a relative
path), so every path comes back absolute; `~` is expanded. A UTF-8 byte-order mark is accepted.

    [paths]
    protocols = "/srv/cicatrix/protocols"    # the clinic's own protocol folder (none by default)
    store = "clinic.sqlite3"                 # the clinic store (SQLite file)

    [store]
    url = "postgresql+psycopg://cicatrix@db.clinic.example/cicatrix"  # the clinic's server (several rooms)
    recordings = "/srv/cicatrix/recordings"  # clinical recordings, each report beside its recording
    clinic_recordings = "/mnt/clinic/recordings"  # the clinic's recordings share (none by default; docs/deployment.md)

    [ports]
    light = "/dev/ttyUSB0"                   # serial port of the phototherapy handpiece
    pen = "/dev/ttyUSB1"                     # serial port of the microneedling pen

    [window]
    idle_lock_minutes = 10                   # 0 = never

    [clinic]
    room = "room 2"                          # this workstation's room (the computer's name by default)

The checking here is deliberately small; it should merge with the protocol files' strict reader
(workstation/protocols) into one reader.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workstation import places
from workstation.errors import UserError
from workstation.progname import command
from workstation.terminal import quoted

IDLE_LOCK_MAX_MINUTES = 240  # team default: a lock longer than a working half-day would not protect anything


def _host_name() -> str:
    import socket

    return socket.gethostname() or "this computer"


@dataclass(frozen=True)
class Key:
    """One setting: its dotted name in the file, its kind ("path", "text" or "minutes"), what it is, its default."""

    name: str
    kind: str
    about: str
    default: Callable[[], Any]


KEYS: tuple[Key, ...] = (
    Key("paths.protocols", "path", "the clinic's own protocol folder, loaded after the factory library",
        lambda: None),
    Key("paths.store", "path", "the clinic store (SQLite file)", places.clinic_store_file),
    Key("store.url", "url", "the clinic store as a URL (postgresql+psycopg://account@server/database for a clinic's "
        "server, sqlite:////path/file.sqlite3); when not set, the SQLite file paths.store names", lambda: None),
    Key("paths.recordings", "path", "the clinical recordings folder (reports are written beside each recording)",
        places.recordings_dir),
    Key("paths.clinic_recordings", "path", "the clinic's recordings share: each closed recording is copied there "
        "and verified (not set = no copy)", lambda: None),
    Key("ports.light", "text", "serial port of the phototherapy handpiece", lambda: None),
    Key("ports.pen", "text", "serial port of the microneedling pen", lambda: None),
    Key("clinic.room", "text", "this workstation's room, named to another room that finds a course in treatment "
        "here (e.g. \"room 2\"); the computer's name by default", _host_name),
    Key("window.idle_lock_minutes", "minutes", f"minutes without input before the window locks (0 = never, at most "
        f"{IDLE_LOCK_MAX_MINUTES}); clinical mode only, never while a step runs", lambda: 10),
)
BY_NAME = {k.name: k for k in KEYS}
DEFAULT_SOURCE = "default"


@dataclass(frozen=True)
class Setting:
    key: Key
    value: Any  # Path, str, int or None (not set)
    source: str  # "default", "settings file <path>" or "command line <option>"


class Settings:
    """The values in force, each with its source. Read them with `settings["paths.store"]`."""

    def __init__(self, values: Mapping[str, Setting], file: Path) -> None:
        self._values = dict(values)
        self.file = file

    def __getitem__(self, name: str) -> Any:
        return self._values[name].value

    def setting(self, name: str) -> Setting:
        return self._values[name]

    def store_target(self) -> Path | str:
        """The clinic store in force, for ClinicStore.open: a store file given on the command line, else store.url
        when set, else the SQLite file paths.store names."""
        if self._values["paths.store"].source.startswith("command line") or self["store.url"] is None:
            return self["paths.store"]
        return self["store.url"]

    def all(self) -> list[Setting]:
        return [self._values[k.name] for k in KEYS]

    def describe(self) -> list[str]:
        """One line per setting: name, value, source (what the `settings` command prints)."""
        lines = []
        for s in self.all():
            shown = "(not set)" if s.value is None else str(s.value)
            lines.append(f"{s.key.name:26} {shown}\n{'':26} from {s.source}; {s.key.about}")
        return lines


def _describe_type(value: Any) -> str:
    return {bool: "true/false", int: "a whole number", float: "a number", str: "text", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def parse_settings(path: Path, data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Check one parsed settings document. Returns (values by dotted name, errors as sentences naming file and key);
    paths come back absolute (relative ones taken from the file's folder)."""
    errors: list[str] = []
    values: dict[str, Any] = {}
    sections = sorted({k.name.split(".")[0] for k in KEYS})
    for section, body in data.items():
        if section not in sections:
            errors.append(f"{path}: {section}: is not a known section; known sections: {', '.join(sections)}.")
            continue
        if not isinstance(body, dict):
            errors.append(f"{path}: {section}: must be a table ([{section}]), not {_describe_type(body)}.")
            continue
        known = sorted(k.name.split(".")[1] for k in KEYS if k.name.startswith(section + "."))
        for name, value in body.items():
            dotted = f"{section}.{name}"
            key = BY_NAME.get(dotted)
            if key is None:
                errors.append(f"{path}: {dotted}: is not a known key; known keys in [{section}]: {', '.join(known)}.")
                continue
            checked, problem = _check(key, value, path.parent)
            if problem:
                errors.append(f"{path}: {dotted}: {problem}")
            else:
                values[dotted] = checked
    return values, errors


def _check(key: Key, value: Any, base: Path) -> tuple[Any, str | None]:
    if key.kind == "minutes":
        if isinstance(value, bool) or not isinstance(value, int):
            return None, f"must be a whole number of minutes, not {_describe_type(value)} ({quoted(value)})."
        if not 0 <= value <= IDLE_LOCK_MAX_MINUTES:
            return None, f"is {value}; allowed: 0 (never) to {IDLE_LOCK_MAX_MINUTES} minutes."
        return value, None
    what = {"path": "a path", "url": "a URL"}.get(key.kind, "text")
    if isinstance(value, str) and not value.strip():
        return None, f"is empty; give {what} in quotes, or remove the line to use the default."
    if not isinstance(value, str):
        return None, f"must be {what} in quotes, not {_describe_type(value)} ({quoted(value)})."
    if key.kind == "path":
        p = Path(value.strip()).expanduser()
        return (p if p.is_absolute() else base / p), None
    if key.kind == "url":
        from workstation.store.connection import store_url

        if "://" not in value:
            return None, f"is {quoted(value)}; give a URL such as postgresql+psycopg://account@server/database."
        try:
            store_url(value.strip())
        except UserError as exc:
            return None, str(exc)
    return value.strip(), None


def read_settings_file(path: Path) -> dict[str, Any]:
    """The values a settings file sets (by dotted name). A missing file sets nothing; an unreadable or invalid one
    raises UserError listing every problem (file, key, what is allowed)."""
    try:
        raw = path.read_bytes()
        text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8")  # a byte-order mark (Windows editors) is accepted
        data = tomllib.loads(text)
    except FileNotFoundError:
        return {}
    except IsADirectoryError as exc:
        raise UserError(f"{path} is a folder, not a settings file; give the file (cicatrix.toml).") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: is not UTF-8 text (byte {exc.start + 1}); save it as UTF-8.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: is not valid TOML ({exc}); fix the syntax (`{command('settings')}` checks it).") from exc
    except OSError as exc:
        raise UserError(f"{path}: could not be read ({exc.strerror}).") from exc
    values, errors = parse_settings(path, data)
    if errors:
        raise UserError("The settings file has errors, so none of it is used:\n  " + "\n  ".join(errors))
    return values


def load_settings(file: Path | None = None, overrides: Mapping[str, tuple[Any, str]] | None = None) -> Settings:
    """Defaults, then the settings file (`file`, else cicatrix.toml in the config folder), then `overrides`
    (dotted name -> (value, option name)) for values given on the command line (None = not given).
    Raises UserError for an invalid file or an unknown override name."""
    explicit = file is not None
    path = Path(file).expanduser().absolute() if file is not None else places.settings_file()
    if explicit and path.is_dir():
        raise UserError(f"{path} is a folder, not a settings file; give the file (cicatrix.toml).")
    if explicit and not path.is_file():
        raise UserError(f"The settings file {path} does not exist; give an existing file or leave out --settings.")
    from_file = read_settings_file(path)
    values = {k.name: Setting(k, k.default(), DEFAULT_SOURCE) for k in KEYS}
    for name, value in from_file.items():
        values[name] = Setting(BY_NAME[name], value, f"settings file {path}")
    for name, (value, option) in (overrides or {}).items():
        if name not in BY_NAME:
            raise ValueError(f"unknown setting {name!r}")
        if value is not None:
            if BY_NAME[name].kind == "path":
                value = Path(value).expanduser().absolute()
            values[name] = Setting(BY_NAME[name], value, f"command line {option}")
    return Settings(values, path)
