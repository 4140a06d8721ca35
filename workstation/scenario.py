"""Trainer scenarios: a patient profile, areas, a protocol, and timed events, as a TOML file.

A scenario drives the headless runner (`python main.py session --simulate --scenario FILE`) and the trainer's
simulation in the window. The format is documented in `docs/scenario-format.md`; errors name the file and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workstation.errors import UserError
from workstation.protocols import LESION_TYPES

# Actions a timed event may take. Device faults go to that device's emulator; the rest act on the session.
DEVICE_ACTIONS = {
    "unplug", "replug", "stall", "unstall", "corrupt", "over_temperature", "lamp_failure", "contact_lost",
    "contact_restored", "motor_jam", "clear_faults_cause",
}
# reset / resume: the operator's Reset interlocks and Resume (a scenario with a resume runs with trips pausing the
# session instead of aborting it); crash: the headless runner kills its own process (SIGKILL), for crash recovery.
SESSION_ACTIONS = {"operator_stop", "estop", "pause", "reset", "resume", "crash"}
ROMAN = ("I", "II", "III", "IV", "V", "VI")


class ScenarioError(UserError):
    pass


@dataclass(frozen=True, slots=True)
class ScenarioArea:
    area_id: str
    region: str
    lesion: str
    size_cm2: float


@dataclass(frozen=True, slots=True)
class TimedEvent:
    at_s: float  # seconds after the first step starts
    action: str
    device: str = ""
    value: float = 0.0  # e.g. the corruption rate


@dataclass(frozen=True, slots=True)
class Scenario:
    path: Path
    title: str
    description: str
    pseudonym: str
    skin_type: int
    pih_history: bool
    med_mj_cm2: float | None
    areas: tuple[ScenarioArea, ...]
    protocol_id: str
    operator_id: str
    pass_duration_s: float
    light_warmup_s: float
    seed: int
    events: tuple[TimedEvent, ...]
    expect: str  # "completed" or "aborted": what a trainer's check expects
    screening_yes: tuple[str, ...] = ()  # screening items answered "yes"; every other item is answered "no"

    @property
    def skin_type_roman(self) -> str:
        return ROMAN[self.skin_type - 1]


def _get(d: dict, key: str, kind: type | tuple[type, ...], where: str, path: Path, default: Any = ...) -> Any:
    if key not in d:
        if default is ...:
            raise ScenarioError(f"{path.name}: [{where}] needs the key '{key}'.")
        return default
    v = d[key]
    if isinstance(v, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ScenarioError(f"{path.name}: [{where}] {key} = {v!r} has the wrong type.")
    if not isinstance(v, kind):
        raise ScenarioError(f"{path.name}: [{where}] {key} = {v!r} has the wrong type.")
    return v


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"scenario file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"scenario file {path} cannot be read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path.name} is not valid TOML: {exc}") from exc
    sc = _get(doc, "scenario", dict, "scenario", path)
    pat = _get(doc, "patient", dict, "patient", path)
    ses = _get(doc, "session", dict, "session", path)
    skin_type = _get(pat, "skin_type", int, "patient", path)
    if not 1 <= skin_type <= 6:
        raise ScenarioError(f"{path.name}: [patient] skin_type must be a Fitzpatrick type 1–6, not {skin_type}.")
    med = _get(pat, "med_mj_cm2", (int, float), "patient", path, None)
    areas = []
    for i, a in enumerate(_get(doc, "areas", list, "areas", path)):
        where = f"areas #{i + 1}"
        if not isinstance(a, dict):
            raise ScenarioError(f"{path.name}: [{where}] must be a table.")
        lesion = _get(a, "lesion", str, where, path)
        if lesion not in LESION_TYPES:
            raise ScenarioError(f"{path.name}: [{where}] lesion {lesion!r} is not one of {', '.join(LESION_TYPES)}.")
        size = float(_get(a, "size_cm2", (int, float), where, path))
        if not 0 < size <= 2000:
            raise ScenarioError(f"{path.name}: [{where}] size_cm2 must be between 0 and 2000 cm², not {size}.")
        areas.append(ScenarioArea(_get(a, "id", str, where, path), _get(a, "region", str, where, path), lesion, size))
    if not areas:
        raise ScenarioError(f"{path.name}: a scenario needs at least one [[areas]] entry.")
    events = []
    for i, e in enumerate(_get(doc, "events", list, "events", path, [])):
        where = f"events #{i + 1}"
        action = _get(e, "action", str, where, path)
        device = _get(e, "device", str, where, path, "")
        if action not in DEVICE_ACTIONS | SESSION_ACTIONS:
            raise ScenarioError(f"{path.name}: [{where}] unknown action {action!r}; known: "
                                f"{', '.join(sorted(DEVICE_ACTIONS | SESSION_ACTIONS))}.")
        if action in DEVICE_ACTIONS and device not in ("light", "pen"):
            raise ScenarioError(f"{path.name}: [{where}] action {action!r} needs device = \"light\" or \"pen\".")
        at_s = float(_get(e, "at_s", (int, float), where, path))
        if at_s < 0:
            raise ScenarioError(f"{path.name}: [{where}] at_s must not be negative.")
        events.append(TimedEvent(at_s, action, device, float(_get(e, "value", (int, float), where, path, 0.0))))
    expect = _get(sc, "expect", str, "scenario", path, "completed")
    if expect not in ("completed", "aborted"):
        raise ScenarioError(f"{path.name}: [scenario] expect must be \"completed\" or \"aborted\".")
    pass_s = float(_get(ses, "pass_duration_s", (int, float), "session", path, 2.0))
    if not 0.1 <= pass_s <= 600:
        raise ScenarioError(f"{path.name}: [session] pass_duration_s must be between 0.1 and 600 s.")
    return Scenario(
        path=path,
        title=_get(sc, "title", str, "scenario", path),
        description=_get(sc, "description", str, "scenario", path, ""),
        pseudonym=_get(pat, "pseudonym", str, "patient", path),
        skin_type=skin_type,
        pih_history=_get(pat, "pih_history", bool, "patient", path, False),
        med_mj_cm2=float(med) if med is not None else None,
        areas=tuple(areas),
        protocol_id=_get(ses, "protocol", str, "session", path),
        operator_id=_get(ses, "operator", str, "session", path, "trainee"),
        pass_duration_s=pass_s,
        light_warmup_s=float(_get(ses, "light_warmup_s", (int, float), "session", path, 1.0)),
        seed=_get(ses, "seed", int, "session", path, 1),
        events=tuple(sorted(events, key=lambda e: e.at_s)),
        expect=expect,
        screening_yes=tuple(str(x) for x in _get(pat, "screening_yes", list, "patient", path, [])),
    )
