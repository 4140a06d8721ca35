"""Trainer scenarios: a patient profile, areas, a protocol, and timed events, as a TOML file.

A scenario drives the headless runner (`python main.py session --simulate --scenario FILE`) and the trainer's
simulation in the window. The format is documented in `docs/scenario-format.md`. The file is read by the same strict
reader as the protocols and tables: unknown keys, NaN, ±inf, wrong types and out-of-range values are errors naming the
file, the key and the allowed range; regions, lesions and screening items come from the reference tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from drivers.protocol import clean_text
from workstation.errors import UserError
from workstation.progname import command
from workstation.protocols import LESION_TYPES
from workstation.protocols.reader import Reader, read_toml
from workstation.protocols.schema import DEVICE_DOSE_MJ_CM2
from workstation.protocols.tables import Tables
from workstation.store.clinic_store import PSEUDONYM
from workstation.store.operators import ACCOUNT, ACCOUNT_RULE
from workstation.terminal import quoted

# Actions a timed event may take. Device faults go to that device's emulator; the rest act on the session.
DEVICE_ACTIONS = {
    "unplug", "replug", "stall", "unstall", "corrupt", "over_temperature", "lamp_failure", "contact_lost",
    "contact_restored", "motor_jam", "sensor_low", "sensor_glitch", "backup_timer_failure", "clear_faults_cause",
}
# reset / resume: the operator's Reset interlocks and Resume (a scenario with a resume runs with trips pausing the
# session instead of aborting it); crash: the headless runner kills its own process (SIGKILL), for crash recovery.
SESSION_ACTIONS = {"operator_stop", "estop", "pause", "reset", "resume", "crash"}
ROMAN = ("I", "II", "III", "IV", "V", "VI")
EVENT_TIME_MAX_S = 3600.0


class ScenarioError(UserError):
    pass


@dataclass(frozen=True, slots=True)
class ScenarioArea:
    area_id: str
    region: str
    lesion: str
    size_cm2: float
    scar_age_months: int | None = None
    scar_kind: str | None = None


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
    # Screening items answered "yes" (every other item is answered "no"); `pih_history = true` puts "pih_history" here.
    screening_yes: tuple[str, ...] = ()

    @property
    def skin_type_roman(self) -> str:
        return ROMAN[self.skin_type - 1]


def _factory_tables() -> Tables:
    from workstation.protocols import load_library

    tables = load_library().tables
    if tables is None:
        raise ScenarioError(f"The reference tables did not load; run `{command('protocols check')}`.")
    return tables


def resolve_scenario(given: Path | str) -> Path:
    """The scenario file meant by what the user typed, for every command that takes one (`run`, `session`): a path
    to a file; else a packaged scenario's name, with or without `.toml` (e.g. combined-uneventful). Raises
    ScenarioError for a folder ("is a folder, not a scenario file") or a name that is neither (listing the packaged
    ones)."""
    from workstation.protocols import seeds_dir

    path = Path(given).expanduser()
    if path.is_dir():
        raise ScenarioError(f"{path} is a folder, not a scenario file; give a .toml scenario file or the name of a "
                            "packaged scenario.")
    if path.is_file():
        return path
    packaged_dir = seeds_dir() / "scenarios"
    if path.parent != Path("."):
        raise ScenarioError(f"The scenario file {path} does not exist.")
    if path.suffix in ("", ".toml"):
        packaged = packaged_dir / f"{path.stem}.toml"
        if packaged.is_file():
            return packaged
    known = ", ".join(sorted(f.stem for f in packaged_dir.glob("*.toml")))
    raise ScenarioError(f"There is no scenario file {path} and no packaged scenario of that name (packaged: "
                        f"{known}).")


def load_scenario(path: str | Path, tables: Tables | None = None) -> Scenario:
    """Read and check a scenario file against the reference tables (the factory ones unless given). Raises
    ScenarioError listing every problem as `FILE: KEY: what is wrong`."""
    path = Path(path)
    if path.is_dir():
        raise ScenarioError(f"{path} is a folder, not a scenario file; give the .toml file itself.")
    if not path.is_file():
        raise ScenarioError(f"scenario file {path} does not exist.")
    data, err = read_toml(path)
    if err is not None:
        raise ScenarioError(str(err))
    tables = tables or _factory_tables()
    r = Reader(path, data or {})
    for section in ("scenario", "patient", "session"):
        r.table(section)
    title = _words(r, "scenario.title")
    description = _words(r, "scenario.description", required=False, default="")
    expect = r.choice("scenario.expect", ("completed", "aborted"), required=False, default="completed")
    pseudonym = _words(r, "patient.pseudonym")
    if pseudonym and not PSEUDONYM.match(pseudonym):  # the store's own rule, said here with the file and the key
        r.error("patient.pseudonym", f"{quoted(pseudonym)} is not a pseudonym: use 3–32 letters, digits and hyphens, "
                "starting with a letter or a digit (never a name).")
    skin_type = r.integer("patient.skin_type", 1, 6)
    pih_history = r.boolean("patient.pih_history")
    med = r.number("patient.med_mj_cm2", *DEVICE_DOSE_MJ_CM2, required=False)
    known_items = [i.id for i in tables.screening]
    yes = list(r.choice_list("patient.screening_yes", known_items, required=False) or ())
    if "pih_history" in yes and not pih_history:
        r.error("patient.screening_yes", "answers pih_history yes while [patient] pih_history is false; set "
                "pih_history = true instead.")
    if pih_history and "pih_history" not in yes:
        yes.append("pih_history")
    areas = _areas(r, tables)
    events = _events(r)
    protocol = _words(r, "session.protocol")
    operator = _words(r, "session.operator", required=False, default="trainee")
    if operator and not ACCOUNT.match(operator):  # it is recorded as who ran the session: an account name, no more
        r.error("session.operator", f"{quoted(operator)} is not an account name: {ACCOUNT_RULE} (e.g. trainee-01).")
    pass_s = r.number("session.pass_duration_s", 0.1, 600, required=False, default=2.0)
    warmup = r.number("session.light_warmup_s", 0, 600, required=False, default=1.0)
    seed = r.integer("session.seed", 0, 2**31 - 1, required=False, default=1)
    r.finish()
    if r.errors:
        raise ScenarioError("\n".join(str(e) for e in r.errors))
    assert title and pseudonym and skin_type and protocol and operator is not None
    return Scenario(path=path, title=title, description=description or "", pseudonym=pseudonym, skin_type=skin_type,
                    pih_history=pih_history, med_mj_cm2=None if med is None else float(med), areas=tuple(areas),
                    protocol_id=protocol, operator_id=operator, pass_duration_s=float(pass_s),
                    light_warmup_s=float(warmup), seed=seed, events=tuple(sorted(events, key=lambda e: e.at_s)),
                    expect=expect or "completed", screening_yes=tuple(yes))


def _words(r: Reader, key: str, **kw: object) -> str | None:
    """A text of the file cleaned the way a device's words are (`drivers.protocol.clean_text`, one cleaner): ESC,
    NUL, BEL and the other control characters never reach the terminal, the window, the store or a recording raw."""
    value = r.text(key, **kw)  # type: ignore[arg-type]
    if not value:
        return value
    clean = " ".join(clean_text(value).split())
    if not clean:
        r.error(key, "holds only control characters; give some text.")
        return None
    return clean


def _areas(r: Reader, tables: Tables) -> list[ScenarioArea]:
    raw = r.raw("areas")
    if not isinstance(raw, list) or not raw:
        r.error("areas", "needs at least one [[areas]] table.")
        return []
    out: list[ScenarioArea] = []
    labels: set[str] = set()
    for i in range(len(raw)):
        k = f"areas[{i}]"
        if r.table(k) is None:
            continue
        label = _words(r, f"{k}.id")
        region = r.choice(f"{k}.region", tuple(tables.needling.regions))
        lesion = r.choice(f"{k}.lesion", LESION_TYPES)
        size = r.number(f"{k}.size_cm2", 0.01, 2000)
        age = r.integer(f"{k}.scar_age_months", 0, 1200, required=False)
        kind = r.choice(f"{k}.scar_kind", tuple(tables.scar_kinds.labels) if tables.scar_kinds else (), required=False)
        if label in labels:
            r.error(f"{k}.id", f"{quoted(label)} is used by another area; a patient's areas have unique labels.")
        if None not in (label, region, lesion, size):
            labels.add(label)
            out.append(ScenarioArea(label, region, lesion, float(size), age, kind))
    return out


def _events(r: Reader) -> list[TimedEvent]:
    raw = r.raw("events")
    if r.has("events") and not isinstance(raw, list):
        r.error("events", "must be a list of [[events]] tables.")
        return []
    out: list[TimedEvent] = []
    actions = sorted(DEVICE_ACTIONS | SESSION_ACTIONS)
    for i in range(len(raw) if isinstance(raw, list) else 0):
        k = f"events[{i}]"
        if r.table(k) is None:
            continue
        action = r.choice(f"{k}.action", actions)
        device = r.choice(f"{k}.device", ("light", "pen"), required=action in DEVICE_ACTIONS, default="")
        at_s = r.number(f"{k}.at_s", 0, EVENT_TIME_MAX_S)
        value = r.number(f"{k}.value", 0, 1, required=False, default=0.0)
        if None not in (action, device, at_s, value):
            out.append(TimedEvent(float(at_s), action, device, float(value)))
    return out
