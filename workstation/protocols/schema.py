"""The schema of a protocol file (docs/protocol-file-schema.md is the human contract). Turns one parsed TOML
document into a Protocol, or into the list of everything wrong with it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from workstation.protocols.model import (
    DEPTH_CHOICES,
    ESCALATION_METHODS,
    LESION_TYPES,
    LIGHT_START_METHODS,
    MODALITIES,
    SKIN_TYPES,
    UV_FORBIDDEN_LESIONS,
    CourseRules,
    LightRules,
    NeedlingRules,
    Protocol,
    ProtocolError,
    Source,
)
from workstation.protocols.reader import Reader
from workstation.terminal import quoted

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
TOP_KEYS = ("id", "version", "title", "summary", "lesion_types", "modalities", "sources", "course", "light", "needling")
COURSE_KEYS = ("sessions", "sessions_min", "sessions_max", "interval_days", "interval_min_days", "interval_max_days")
LIGHT_KEYS = ("start_method", "med_fraction", "med_minus_mj_cm2", "fixed_start_mj_cm2", "escalation_method",
              "escalation_percent", "cumulative_cap_mj_cm2", "min_interval_days", "repeat_dose_skin_types")
NEEDLING_KEYS = ("depth_choice", "stroke_rate_hz", "stroke_rate_min_hz", "stroke_rate_max_hz", "passes", "passes_max",
                 "min_interval_days", "always_pih_prone_limits")
# Device-level hard bounds (the drivers enforce them too): a protocol may not ask for more.
DEVICE_DOSE_MJ_CM2 = (1.0, 5000.0)
DEVICE_STROKE_RATE_HZ = (50.0, 150.0)
DEVICE_PASSES_MAX = 20  # passes over one area in one session: more is a typing error (the tables allow 2)
# Ranges of the counting keys (a larger number is a typing error, and must never reach SQLite as an overflow).
VERSION_MAX = 1_000_000
SESSIONS_MAX = 1000
DAYS_MAX = 3650
# Numbers CLINICAL.md calls a team default: their citation must point at a source marked team_default = true.
MUST_BE_TEAM_DEFAULT = ("light.cumulative_cap_mj_cm2",)
# Clinical rules that are not numbers but still need a source.
CITED_NON_NUMBERS = ("repeat_dose_skin_types",)


def parse_protocol(path: Path, data: dict[str, Any]) -> tuple[Protocol | None, list[ProtocolError]]:
    r = Reader(path, data)
    r.only_keys("", TOP_KEYS)
    pid = r.text("id")
    if pid is not None and not ID_PATTERN.match(pid):
        r.error("id", f"is {quoted(pid)}; use 2–64 lower-case letters, digits and hyphens, starting with a letter or digit.")
        pid = None
    version = r.integer("version", 1, VERSION_MAX)
    title = r.text("title")
    summary = r.text("summary", required=False, default="")
    lesions = r.choice_list("lesion_types", LESION_TYPES)
    modalities = r.choice_list("modalities", MODALITIES)
    sources = _sources(r)
    course = _course(r)
    light = needling = None
    for name in MODALITIES:
        wanted = modalities is not None and name in modalities
        if wanted and not r.has(name):
            r.error(name, f"is missing: the protocol lists '{name}' in modalities, so add a [{name}] table.")
        elif not wanted and r.has(name) and modalities is not None:
            r.error(name, f"is present but '{name}' is not in modalities; add it there or remove the table.")
    if modalities and "light" in modalities and r.has("light"):
        light = _light(r)
    if modalities and "needling" in modalities and r.has("needling"):
        needling = _needling(r)
    if lesions and modalities and "light" in modalities:
        bad = sorted(UV_FORBIDDEN_LESIONS.intersection(lesions))
        if bad:
            r.error("lesion_types", f"lists {', '.join(bad)} with light: UV is never planned on a PIH or "
                    "hyperpigmented area (CLINICAL.md). Remove 'light' or those lesion types.")
    cite = _citations(r, sources)
    r.finish()
    if r.errors:
        return None, r.errors
    assert pid and version and title and lesions and modalities and sources is not None and course
    return Protocol(id=pid, version=version, title=title, summary=summary or "", lesion_types=lesions,
                    modalities=modalities, sources=tuple(sources), course=course, light=light, needling=needling,
                    cite=cite, path=path), []


def _sources(r: Reader) -> list[Source] | None:
    raw = r.raw("sources")
    if not isinstance(raw, list) or not raw or not all(isinstance(s, dict) for s in raw):
        r.error("sources", "must be a non-empty list of [[sources]] tables, each with key and citation.")
        return None
    out: list[Source] = []
    for i, _ in enumerate(raw):
        base = f"sources[{i}]"
        sub = r.sub(base, raw[i])
        sub.only_keys(base, ("key", "citation", "team_default"))
        key = sub.text(f"{base}.key")
        citation = sub.text(f"{base}.citation")
        team = sub.boolean(f"{base}.team_default")
        r.errors.extend(sub.errors)
        if key and any(s.key == key for s in out):
            r.error(f"{base}.key", f"{quoted(key)} is used by another source; give each source its own key.")
        elif key and citation:
            out.append(Source(key, citation, team))
    return out


def _course(r: Reader) -> CourseRules | None:
    if r.table("course") is None:
        return None
    r.only_keys("course", (*COURSE_KEYS, "cite"))
    sessions_min = r.integer("course.sessions_min", 1, SESSIONS_MAX)
    sessions_max = r.integer("course.sessions_max", 1, SESSIONS_MAX, required=False)
    sessions = r.integer("course.sessions", 1, SESSIONS_MAX)
    interval_min = r.integer("course.interval_min_days", 1, DAYS_MAX)
    interval_max = r.integer("course.interval_max_days", 1, DAYS_MAX)
    interval = r.integer("course.interval_days", 1, DAYS_MAX)
    if None in (sessions_min, sessions, interval_min, interval_max, interval):
        return None
    if sessions_max is not None and sessions_max < sessions_min:
        r.error("course.sessions_max", f"is {sessions_max}; it must not be below sessions_min ({sessions_min}).")
    if interval_max < interval_min:
        r.error("course.interval_max_days", f"is {interval_max}; it must not be below interval_min_days "
                f"({interval_min}).")
    if sessions < sessions_min or (sessions_max is not None and not sessions_min <= sessions <= sessions_max):
        r.error("course.sessions", f"is {sessions}; it must lie within sessions_min–sessions_max.")
    if not interval_min <= interval <= interval_max:
        r.error("course.interval_days", f"is {interval}; it must lie within interval_min_days–interval_max_days "
                f"({interval_min}–{interval_max}).")
    return CourseRules(sessions, sessions_min, sessions_max, interval, interval_min, interval_max)


def _light(r: Reader) -> LightRules | None:
    if r.table("light") is None:
        return None
    r.only_keys("light", (*LIGHT_KEYS, "cite"))
    method = r.choice("light.start_method", LIGHT_START_METHODS)
    fraction = r.number("light.med_fraction", 0.5, 0.7, required=method == "med_fraction")
    minus = r.number("light.med_minus_mj_cm2", 1, 500, required=method == "med_minus")
    fixed = r.number("light.fixed_start_mj_cm2", *DEVICE_DOSE_MJ_CM2, required=method == "fixed")
    esc_method = r.choice("light.escalation_method", ESCALATION_METHODS)
    esc = r.number("light.escalation_percent", 5, 20)
    cap = r.number("light.cumulative_cap_mj_cm2", 1, None)  # bounded by the factory tables (library.py)
    interval = r.integer("light.min_interval_days", 1, DAYS_MAX)
    repeat = r.choice_list("light.repeat_dose_skin_types", SKIN_TYPES, required=False)
    if None in (method, esc_method, esc, cap, interval, repeat):
        return None
    return LightRules(method, fraction, minus, fixed, esc_method, float(esc), float(cap), interval, repeat or ())


def _needling(r: Reader) -> NeedlingRules | None:
    if r.table("needling") is None:
        return None
    r.only_keys("needling", (*NEEDLING_KEYS, "cite"))
    choice = r.choice("needling.depth_choice", DEPTH_CHOICES)
    lo = r.number("needling.stroke_rate_min_hz", *DEVICE_STROKE_RATE_HZ)
    hi = r.number("needling.stroke_rate_max_hz", *DEVICE_STROKE_RATE_HZ)
    rate = r.number("needling.stroke_rate_hz", *DEVICE_STROKE_RATE_HZ)
    passes_max = r.integer("needling.passes_max", 1, DEVICE_PASSES_MAX)
    passes = r.integer("needling.passes", 1, DEVICE_PASSES_MAX)
    interval = r.integer("needling.min_interval_days", 1, DAYS_MAX)
    gentle = r.boolean("needling.always_pih_prone_limits")
    if None in (choice, lo, hi, rate, passes_max, passes, interval):
        return None
    if not lo <= rate <= hi:
        r.error("needling.stroke_rate_hz", f"is {rate:g}; it must lie within stroke_rate_min_hz–stroke_rate_max_hz "
                f"({lo:g}–{hi:g}).")
    if passes > passes_max:
        r.error("needling.passes", f"is {passes}; it must not exceed passes_max ({passes_max}).")
    return NeedlingRules(choice, float(rate), float(lo), float(hi), passes, passes_max, interval, gentle)


def _citations(r: Reader, sources: list[Source] | None) -> dict[str, str]:
    """Every number (and each rule in CITED_NON_NUMBERS) in [course], [light] and [needling] must name its source in
    that section's `cite` table."""
    known = {s.key: s for s in sources or []}
    cite: dict[str, str] = {}
    for section in ("course", "light", "needling"):
        body = r.raw(section)
        if not isinstance(body, dict):
            continue
        table = r.raw(f"{section}.cite") if "cite" in body else {}
        if not isinstance(table, dict):
            r.error(f"{section}.cite", "must be a table mapping each number's key to a source key.")
            continue
        for key, value in body.items():
            if key not in CITED_NON_NUMBERS and (isinstance(value, bool) or not isinstance(value, int | float)):
                continue
            dotted = f"{section}.{key}"
            ref = r.raw(f"{section}.cite.{key}") if key in table else None
            if ref is not None and not isinstance(ref, str):
                r.error(f"{section}.cite.{key}", "must be text: the key of a source in [[sources]].")
            elif ref is None:
                r.error(dotted, f"has no citation; add {key} = \"<source key>\" to [{section}.cite].")
            elif ref not in known:
                r.error(f"{section}.cite.{key}", f"names source {quoted(ref)}, which is not in [[sources]]; "
                        f"use one of: {', '.join(known) or '(none declared)'}.")
            else:
                cite[dotted] = ref
                if dotted in MUST_BE_TEAM_DEFAULT and not known[ref].team_default:
                    r.error(f"{section}.cite.{key}", "CLINICAL.md calls this number a team default; cite a source "
                            "marked team_default = true.")
        for key in table:
            r.raw(f"{section}.cite.{key}")
            if key not in body:
                r.error(f"{section}.cite.{key}", f"cites a number that is not in [{section}]; remove it.")
    return cite
