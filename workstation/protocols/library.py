"""The protocol library: the factory protocols in seeds/, a clinic's own folder, and the reference tables.
A bad file is reported (file, key, what is wrong) and skipped; the rest of the library still loads."""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from workstation.errors import UserError
from workstation.progname import command
from workstation.protocols.model import Protocol, ProtocolError
from workstation.protocols.reader import read_toml
from workstation.protocols.schema import parse_protocol
from workstation.protocols.tables import Tables, load_tables
from workstation.terminal import quoted
from workstation.words import counted


def seeds_dir() -> Path:
    """The factory library (protocols/, tables/, scenarios/): the package data of `workstation.seeds`, which is the
    repository's top-level seeds/ folder (pyproject.toml maps it), found with importlib.resources so an installed
    program finds it in site-packages and a clone finds it in the clone. Installs are unpacked files, never zipped.
    A clone run without `make setup` (no install, so no mapping) falls back to the clone's own seeds/."""
    try:
        return Path(str(importlib.resources.files("workstation.seeds")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "seeds"


@dataclass
class Library:
    protocols: dict[str, Protocol] = field(default_factory=dict)
    errors: list[ProtocolError] = field(default_factory=list)
    tables: Tables | None = None

    def get(self, protocol_id: str) -> Protocol:
        try:
            return self.protocols[protocol_id]
        except KeyError:
            known = ", ".join(sorted(self.protocols)) or "none"
            raise UserError(f"There is no protocol {quoted(protocol_id)} in the library (known: {known}). "
                            f"Run `{command('protocols check')}` to see files that failed to load.") from None

    def for_lesion(self, lesion_type: str) -> list[Protocol]:
        return [p for p in self.protocols.values() if lesion_type in p.lesion_types]


def load_library(extra_dirs: Iterable[Path | str] = (), *, seeds: Path | None = None) -> Library:
    """Load the tables, the factory protocols and then each extra (clinic) folder, in that order.
    A clinic protocol may not reuse a factory id: it is reported and skipped, so a factory rule cannot be shadowed."""
    root = seeds or seeds_dir()
    lib = Library()
    lib.tables, table_errors = load_tables(root / "tables")
    lib.errors.extend(table_errors)
    _load_folder(lib, root / "protocols", "factory")
    for extra in extra_dirs:
        folder = Path(extra)
        if not folder.is_dir():
            lib.errors.append(ProtocolError(folder, "", "is not a folder; give the folder that holds the clinic's "
                                            "protocol files (*.toml)."))
            continue
        _load_folder(lib, folder, "clinic")
    return lib


def _load_folder(lib: Library, folder: Path, origin: str) -> None:
    files = sorted(folder.glob("*.toml"))
    if origin == "factory" and not files:
        lib.errors.append(ProtocolError(folder, "", "holds no protocol files; reinstall the factory library."))
    for path in files:
        data, err = read_toml(path)
        if err:
            lib.errors.append(err)
            continue
        protocol, errors = parse_protocol(path, data or {})
        if protocol is not None and lib.tables is not None:
            errors = check_against_tables(protocol, lib.tables)
        if errors or protocol is None:
            lib.errors.extend(errors)
            continue
        if protocol.id in lib.protocols:
            first = lib.protocols[protocol.id].path
            lib.errors.append(ProtocolError(path, "id", f"{quoted(protocol.id)} is already used by {first}; "
                                            "give this protocol its own id."))
            continue
        lib.protocols[protocol.id] = replace(protocol, origin=origin)


def check_against_tables(p: Protocol, t: Tables) -> list[ProtocolError]:
    """A protocol may be stricter than the factory reference tables, never looser: start dose, MED rule, escalation,
    cumulative cap, intervals and needling limits. Each error names the key, the file's value and the table's."""
    errs: list[ProtocolError] = []

    def err(key: str, msg: str) -> None:
        errs.append(ProtocolError(p.path or Path("?"), key, msg))

    _check_course_bounds(p, t, err)
    if p.light:
        _check_light_bounds(p, t, err)
        if p.light.min_interval_days < t.intervals.light_min_days:
            err("light.min_interval_days", f"is {p.light.min_interval_days} days; the tables require at least "
                f"{t.intervals.light_min_days} ({t.intervals.sources['light']}).")
        if p.light.escalation_percent > t.light.escalation_max_percent:
            err("light.escalation_percent", f"is {p.light.escalation_percent:g} %; never above "
                f"{t.light.escalation_max_percent:g} % ({t.light.sources['escalation']}).")
    if p.needling:
        n = p.needling
        if n.min_interval_days < t.intervals.needling_min_days:
            err("needling.min_interval_days", f"is {n.min_interval_days} days; the tables require at least "
                f"{t.intervals.needling_min_days} ({t.intervals.sources['needling']}).")
        if n.always_pih_prone_limits and n.min_interval_days < t.needling.pih_min_interval_days:
            err("needling.min_interval_days", f"is {n.min_interval_days} days; PIH-prone limits require at least "
                f"{t.needling.pih_min_interval_days} ({t.needling.sources['pih_prone']}).")
        if n.passes_max > t.needling.passes_max:
            err("needling.passes_max", f"is {n.passes_max}; the tables allow at most {t.needling.passes_max}.")
        if n.stroke_rate_min_hz < t.needling.stroke_rate_min_hz or n.stroke_rate_max_hz > t.needling.stroke_rate_max_hz:
            err("needling.stroke_rate_min_hz", f"the range {n.stroke_rate_min_hz:g}–{n.stroke_rate_max_hz:g} Hz must "
                f"lie within {t.needling.stroke_rate_min_hz:g}–{t.needling.stroke_rate_max_hz:g} Hz.")
    return errs


def _check_course_bounds(p: Protocol, t: Tables, err) -> None:
    """A course plans no more sessions than the tables allow, and its shortest interval is never below the minimum
    interval of its modalities (light: 48 h, Photonet / NHS Tayside; needling: team default 4 weeks) — the gentler
    of the two for a combined protocol, whose per-modality rules still apply on each area."""
    c, it = p.course, t.intervals
    top = c.sessions_max if c.sessions_max is not None else c.sessions
    key = "course.sessions_max" if c.sessions_max is not None else "course.sessions"
    if top > it.course_sessions_max:
        err(key, f"is {top}; the factory tables plan at most {counted(it.course_sessions_max, 'session')} in a course "
            f"({it.sources['course']}).")
    mins = {"light": (it.light_min_days, it.sources["light"]), "needling": (it.needling_min_days,
                                                                          it.sources["needling"])}
    floor, why = min(mins[m] for m in p.modalities)
    if c.interval_min_days < floor:
        err("course.interval_min_days", f"is {c.interval_min_days} day{'s' if c.interval_min_days != 1 else ''}; the "
            f"factory tables require at least {floor} days between sessions ({why}).")


def _check_light_bounds(p: Protocol, t: Tables, err) -> None:
    light, lt = p.light, t.light
    assert light is not None
    if light.fixed_start_mj_cm2 is not None:
        top_type, top = max(lt.by_skin_type.items(), key=lambda kv: kv[1].start_mj_cm2)
        if light.fixed_start_mj_cm2 > top.start_mj_cm2:
            starts = ", ".join(f"{k} {v.start_mj_cm2:g}" for k, v in lt.by_skin_type.items())
            err("light.fixed_start_mj_cm2", f"is {light.fixed_start_mj_cm2:g} mJ/cm²; the factory tables start no "
                f"skin type above {top.start_mj_cm2:g} mJ/cm² (type {top_type}; by type: {starts}) "
                f"({lt.sources['skin_type']}). The engine also caps a fixed start at the start for the area's type.")
    if light.cumulative_cap_mj_cm2 > lt.cumulative_cap_max_mj_cm2:
        err("light.cumulative_cap_mj_cm2", f"is {light.cumulative_cap_mj_cm2:g} mJ/cm²; the factory tables allow at "
            f"most {lt.cumulative_cap_max_mj_cm2:g} mJ/cm² per area over every course (team default: "
            f"{lt.sources['cumulative']}).")
    if light.med_fraction is not None and light.med_fraction > lt.med_first_dose_max_fraction:
        err("light.med_fraction", f"is {light.med_fraction:g}; the factory tables start at most "
            f"{lt.med_first_dose_max_fraction:g} of the MED ({lt.sources['med']}).")
    if light.med_minus_mj_cm2 is not None and light.med_minus_mj_cm2 < lt.med_minus_min_mj_cm2:
        err("light.med_minus_mj_cm2", f"is {light.med_minus_mj_cm2:g} mJ/cm²; the factory tables start at least "
            f"{lt.med_minus_min_mj_cm2:g} mJ/cm² below the MED ({lt.sources['med_minus']}).")
