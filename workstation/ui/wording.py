"""The one table of words a user sees: display names of lesion types, body regions, interlocks, devices, faults and
plan fields (with their units), and the sentences built from them.

Identifiers (`hypopigmented_atrophic_scar`, `contact_lost`, `target_dose_mj_cm2`) are for files and code; every
label, message, alarm and report line takes its words from here. `scrub` is the last line of defence on text that
comes from elsewhere (an exception, a device's own message): it swaps known identifiers for their names and hides
device paths and library messages, so none of them reaches the screen or the PDF.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from drivers.codes import InterlockCause, LinkEvent
from drivers.silence import STALL_DETAIL

LESION_NAMES = {
    "hypopigmented_scar": "Hypopigmented scar",
    "striae_alba": "White stretch marks (striae alba)",
    "atrophic_scar": "Atrophic (sunken) scar",
    "hypopigmented_atrophic_scar": "Hypopigmented atrophic scar",
    "pih": "Post-inflammatory hyperpigmentation (PIH)",
    "hyperpigmented_scar": "Hyperpigmented scar",
}
# Colours of the lesion types on the body map and in the report (distinct in hue and lightness: colour-blind safe).
LESION_COLORS = {
    "hypopigmented_scar": "#f0e442",
    "striae_alba": "#56b4e9",
    "atrophic_scar": "#009e73",
    "hypopigmented_atrophic_scar": "#e69f00",
    "pih": "#7f3f00",
    "hyperpigmented_scar": "#cc79a7",
}
REGION_NAMES = {
    "face": "Face", "forehead": "Forehead", "periorbital": "Around the eye", "neck": "Neck",
    "bony": "Bony area (shin, sternum)", "abdomen": "Abdomen", "back": "Back", "buttocks": "Buttocks",
    "thighs": "Thighs", "lower_back": "Lower back", "upper_arm": "Upper arm", "forearm": "Forearm", "hand": "Hand",
    "lower_leg": "Lower leg", "breast_chest": "Breast and chest",
}
DEVICE_NAMES = {"light": "UV light", "pen": "needling pen", "session": "session", "safety": "safety monitor",
                "recorder": "recorder", "operator": "operator"}
MODALITY_NAMES = {"light": "UV light", "needling": "Microneedling", "none": "No treatment today",
                  "both": "UV light and microneedling"}
# interlock cause: (short name for a light, sentence for a message).
INTERLOCK_NAMES = {
    InterlockCause.TARGET_DOSE: ("Target dose", "the target dose was reached"),
    InterlockCause.AREA_DOSE_CAP: ("Area dose cap", "the area's dose cap was reached"),
    InterlockCause.TELEMETRY_LOST: ("Telemetry", "no data came from the device for a quarter of a second"),
    InterlockCause.HEARTBEAT_LOST: ("Heartbeat", "the device stopped itself: it heard nothing from the workstation"),
    InterlockCause.DISCONNECTED: ("Connection", "the device was disconnected"),
    InterlockCause.CONTACT_LOST: ("Skin contact", "skin contact was lost"),
    InterlockCause.OVER_TEMPERATURE: ("Temperature", "the device is too hot"),
    InterlockCause.ESTOP: ("E-stop", "STOP was pressed"),
    InterlockCause.PROTOCOL_RULE: ("Protocol rule", "a protocol rule forbids it"),
    InterlockCause.DEPTH_LIMIT: ("Depth limit", "the needle depth went past the area's limit"),
    InterlockCause.DEVICE_FAULT: ("Device fault", "the device reported a fault"),
    InterlockCause.SENSOR_IMPLAUSIBLE: ("Implausible reading", "the device sent a reading no sensor could give"),
    InterlockCause.BACKUP_TIME: ("Backup time", "the exposure ran past its backup time: the light's sensor may read low"),
}
FAULT_NAMES = {
    "CONTACT_LOST": "skin contact lost", "OVER_TEMPERATURE": "over-temperature", "WATCHDOG": "watchdog (no heartbeat)",
    "LAMP_FAILURE": "lamp failure", "MOTOR_JAM": "motor jammed", "ESTOP": "E-stop pressed on the device",
    "BACKUP_TIME": "backup time reached", "OVER_CURRENT": "motor over-current",
}
# Plan and area fields: display name with the unit in words a clinician reads.
FIELD_NAMES = {
    "target_dose_mj_cm2": "target dose (mJ/cm²)", "depth_mm": "depth (mm)", "stroke_rate_hz": "stroke rate (Hz)",
    "passes": "passes", "size_cm2": "size (cm²)", "body_region": "body region", "lesion_type": "lesion",
    "skin_type": "skin type", "label": "name", "irradiance_mw_cm2": "irradiance (mW/cm²)",
    "dose_mj_cm2": "dose (mJ/cm²)", "med_mj_cm2": "MED (mJ/cm²)", "load_current_ma": "motor load (mA)",
    "contact": "skin contact", "lamp_temp_c": "lamp temperature (°C)",
}
FIELD_UNITS = {"target_dose_mj_cm2": "mJ/cm²", "depth_mm": "mm", "stroke_rate_hz": "Hz", "passes": "",
               "size_cm2": "cm²", "dose_mj_cm2": "mJ/cm²", "irradiance_mw_cm2": "mW/cm²", "med_mj_cm2": "mJ/cm²"}
SEVERITY_LABELS = {"high": "HIGH", "medium": "MEDIUM", "low": "LOW", "info": "INFO"}
OPERATOR_STOP_SOURCES = ("STOP button", "scenario", "key")  # an E-stop from these is the operator's own action

_PATH = re.compile(r"/dev/pts/\d+|/tmp/cicatrix-emu-[\w-]+/tty-\w+")  # emulator ptys; a port the user typed stays
_LIBRARY_TEXT = re.compile(r"device reports readiness to read but returned no data"
                           r"( \(device disconnected or multiple access on port\?\))?|\[Errno \d+\][^)]*")


STATE_WORDS = {"idle": "not started", "connected": "connected", "plan_loaded": "planned", "armed": "ready",
               "treating": "treating", "paused": "paused", "completed": "completed", "aborted": "aborted"}
"""Every session state (workstation.session.steps.State) in words; `state_words` for one that is not here."""


def state_words(state: Any) -> str:
    """A session state in words: STATE_WORDS, else the identifier with spaces (never an identifier on screen)."""
    return STATE_WORDS.get(str(state), humanise(str(state)))


def protocol_title(protocol_id: str, version: Any = None) -> str:
    """A protocol's title from the library (its id in words when the library does not hold it), with its version."""
    title = _titles().get(str(protocol_id)) or humanise(str(protocol_id).replace("-", " ")).capitalize()
    return f"{title} (version {version})" if version is not None else title


def _titles() -> dict[str, str]:
    if _TITLES is None:
        try:
            from workstation.protocols import load_library

            globals()["_TITLES"] = {pid: p.title for pid, p in load_library().protocols.items()}
        except Exception:  # noqa: BLE001 - a library that does not load leaves the ids in words
            globals()["_TITLES"] = {}
    return _TITLES or {}


_TITLES: dict[str, str] | None = None


def _command(args: str) -> str:
    from workstation.progname import command

    return command(args)


def humanise(identifier: str) -> str:
    """`some_identifier` → `some identifier` (the fallback for a name not in the table)."""
    return str(identifier).replace("_", " ").strip()


def lesion_name(lesion_type: str) -> str:
    return LESION_NAMES.get(lesion_type, humanise(lesion_type).capitalize())


def region_name(region: str) -> str:
    return REGION_NAMES.get(region, humanise(region).capitalize())


def device_name(device: str) -> str:
    return DEVICE_NAMES.get(device, humanise(device))


def interlock_name(interlock: str) -> str:
    return INTERLOCK_NAMES.get(interlock, (humanise(interlock).capitalize(), ""))[0]


def breakable(text: str, run: int = 16) -> str:
    """`text` with a zero-width space every `run` characters of a longer run (a digest, a file name), so a wrapped
    label can break it at the window's edge."""
    return re.sub(rf"\S{{{run + 1},}}", lambda m: "\u200b".join(m[0][i:i + run] for i in range(0, len(m[0]), run)),
                  text)


def stall_sentence(device: str, stall_s: object) -> str:
    """A device stopped because the workstation itself was held up past the wall limit (drivers/silence.py), in
    words: the workstation is named, not the device's silence."""
    try:
        seconds = f"{float(stall_s):.1f} s"
    except (TypeError, ValueError):
        seconds = "over a second"
    return f"the workstation was held up and could not watch the {device} for {seconds} (a stall)"


def interlock_sentence(interlock: str) -> str:
    return INTERLOCK_NAMES.get(interlock, ("", humanise(interlock)))[1] or humanise(interlock)


def trip_cause_sentence(details: Any) -> str:
    """The cause of a recorded interlock trip in words, from its event's details: an E-stop names its `source` (the
    STOP button, a scenario, "recording failed", "store failed", "window closed"), never "STOP was pressed" for one
    the workstation made itself (a fresh tester of issue 12: inspect said so of the recorder's E-stop)."""
    cause = str(details.get("cause", details.get("interlock", "?")))
    if cause == InterlockCause.ESTOP and details.get("source"):
        return f"E-stop ({scrub(str(details['source']))})"
    return interlock_sentence(cause)


def field_name(field: str) -> str:
    return FIELD_NAMES.get(field, humanise(field))


def modality_name(modality: str) -> str:
    return MODALITY_NAMES.get(modality, humanise(modality))


def quantity(value: Any, unit: str = "", *, digits: int = 4) -> str:
    """A number with its unit for a person: `—` when there is none or it is not finite (never `nan`)."""
    if value is None:
        return "—"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "—"
    text = f"{v:.{digits}g}"
    return f"{text} {unit}".strip()


def count(n: int, singular: str, plural: str | None = None) -> str:
    """`1 pass`, `2 passes`."""
    return f"{n} {singular if n == 1 else (plural or singular + ('es' if singular.endswith('s') else 's'))}"


def field_change(field: str, before: Any, after: Any) -> str:
    """`size 4 cm² → 5 cm²` for a corrected field, values in words."""
    names = {"lesion_type": lesion_name, "body_region": region_name}
    if field in names:
        return f"{field_name(field)} {names[field](before)} → {names[field](after)}"
    unit = FIELD_UNITS.get(field, "")
    name = FIELD_NAMES.get(field, humanise(field)).split(" (")[0]
    if isinstance(before, int | float) or isinstance(after, int | float):
        return f"{name} {quantity(before, unit)} → {quantity(after, unit)}"
    return f"{name} {before} → {after}"


_TYPED_PORTS: set[str] = set()  # ports the user typed in the clinical form: shown as typed


def keep_ports(ports: Iterable[str]) -> None:
    """Ports the user typed (the clinical connect form): `scrub` shows them as typed, even a /dev/pts one."""
    _TYPED_PORTS.update(str(p) for p in ports)


# What `scrub`'s word rewrites never touch: a file path (from `/` or `~`; its folders' and file's names may hold spaces
# when a later word goes on with `/` or ends in a file name of the program's kinds), a file name of those kinds, and
# text already quoted (“…”, or '…' whose quotes are not apostrophes: "the lamp's" opens nothing). A folder named nan,
# CONTACT_LOST, dose_mj_cm2 or "session a → b" stays the folder it is; a pseudonym or a label, quoted, stays as typed.
# Where a path ends cannot always be told: the rule keeps too much rather than rewrite a path.
_ENDINGS = r"\.(?:h5|hdf5|sqlite3|pdf|csv|toml)(?!\w)"
_KEPT = re.compile(
    rf"(?<![\w.~/])(?:~[\w.-]*)?/\S*(?:(?: +[^\s/]+)*? +(?:\S*/\S*|\S*{_ENDINGS}\S*))*"  # on one line
    rf"|\S+{_ENDINGS}"
    r"|“[^”\n]*”"
    r"|(?<!\w)'(?:[^'\n]|'(?=\w))*'(?!\w)")


def kept_pieces(text: str) -> list[tuple[str, bool]]:
    """`text` cut into `(piece, kept)`: kept pieces are paths, file names and quoted text, left exactly as they are."""
    out: list[tuple[str, bool]] = []
    at = 0
    for m in _KEPT.finditer(text):
        if m.start() > at:
            out.append((text[at:m.start()], False))
        out.append((m[0], True))
        at = m.end()
    if at < len(text):
        out.append((text[at:], False))
    return out


def scrub(text: str) -> str:
    """Text from elsewhere made fit for a user: device paths hidden (but a port the user typed stays), library
    messages dropped, identifiers named. File paths, file names and quoted text are left as they are by every word
    rewrite (`kept_pieces`): the rewrites apply to the rest of the sentence."""
    text = _PATH.sub(lambda m: m[0] if m[0] in _TYPED_PORTS else "its port", str(text))
    text = _LIBRARY_TEXT.sub("the link broke", text)
    text = text.replace(" (its port)", "")
    text = re.sub(r"`(?:python main\.py|cicatrix) ([^`]+)`", lambda m: f"“{_command(m[1])}”", text)
    text = re.sub(r"`([^`]+)`", r"“\1”", text)  # no backticks on screen or paper
    return "".join(piece if kept else _named(piece) for piece, kept in kept_pieces(text))


def _named(text: str) -> str:
    """`scrub`'s word rewrites, on a piece of a sentence that holds no path and no quoted text."""
    text = re.sub(r"\bINTERLOCK (\w+) on (\w+)(: )?",
                  lambda m: f"{interlock_name(m[1])} interlock on the {device_name(m[2])}{m[3] or ''}", text)
    # two temperature limits: the lamp's own (its firmware) and the workstation's lower one (safety.py): say whose
    text = re.sub(r"over the (\d+(?:\.\d+)?) °C limit", r"over the lamp's own \1 °C limit", text)
    text = re.sub(r"([Ll]amp at [\d.]+ °C), above (\d+(?:\.\d+)?) °C", r"\1, above the workstation's \2 °C limit",
                  text)
    text = re.sub(r"\binterlocks? (\w+) on (\w+)",
                  lambda m: f"{interlock_name(m[1]).lower()} interlock on the {device_name(m[2])}", text)
    text = re.sub(r"\(modality: (\w+)\)", lambda m: f"({modality_name(m[1]).lower()})", text)
    text = re.sub(r"\bCLINICAL\.md\b", "the team's clinical guide", text)
    text = re.sub(r"\b(?:Session|session) (\w+) → (\w+)",
                  lambda m: f"Session {state_words(m[1])} → {state_words(m[2])}", text)
    text = re.sub(r"\bnan\b", "no number", text)  # what a person typed is quoted as typed (a kept piece)
    for table in (LESION_NAMES, FIELD_NAMES):
        for key in sorted(table, key=len, reverse=True):
            if "_" in key:
                text = re.sub(rf"\b{re.escape(key)}\b", table[key].lower() if table is LESION_NAMES else table[key],
                              text)
    for key, name in FAULT_NAMES.items():  # a device's own fault names (CONTACT_LOST)
        text = re.sub(rf"\b{key}\b", name, text)
    for key, (name, _sentence) in INTERLOCK_NAMES.items():
        if "_" in key:
            text = re.sub(rf"\b{re.escape(key)}\b", name.lower(), text)
    return text


def is_operator_stop(event: Any) -> bool:
    """An E-stop the operator pressed (button, key, a trainer's scenario): an action to log, not an alarm."""
    if getattr(event, "kind", "") != "interlock" or event.details.get("interlock") != InterlockCause.ESTOP:
        return False
    source = str(event.details.get("source", ""))
    return any(s.lower() in source.lower() for s in OPERATOR_STOP_SOURCES)


# What a `connection` event's code (details["link"], drivers/codes.py) means, in words; an event without a code (a
# driver that gives none) is worded from its message like any other.
LINK_WORDS = {
    LinkEvent.DISCONNECTED: "The {device} is disconnected: check its cable.",
    LinkEvent.TELEMETRY_LOST: "No data from the {device} for a quarter of a second.",
    LinkEvent.RECONNECTED: "The {device} is connected again; it was made safe.",
    LinkEvent.TELEMETRY_RESUMED: "Data from the {device} resumed.",
    LinkEvent.CONNECTED: "The {device} is connected.",
}


def event_sentence(event: Any) -> str:
    """One sentence for a bus event, in words (no identifier, no path, no library text)."""
    d = event.details
    dev = device_name(str(d.get("device", event.source)))
    if event.kind == "interlock":
        il = str(d.get("interlock", ""))
        if il == InterlockCause.ESTOP:
            return f"E-stop ({scrub(str(d.get('source', 'no source given')))}): the {dev} was stopped."
        if STALL_DETAIL in d:  # lost on the wall-clock bound alone: the workstation could not look (drivers/silence.py)
            return f"{interlock_name(il)}: {stall_sentence(dev, d[STALL_DETAIL])} — the {dev} was stopped."
        return f"{interlock_name(il)}: {interlock_sentence(il)} — the {dev} was stopped."
    if event.kind == "fault":
        faults = [FAULT_NAMES.get(f, humanise(f).lower()) for f in d.get("faults", [])] or ["an unknown fault"]
        return f"The {device_name(event.source)} reports {', '.join(faults)}."
    if event.kind == "telemetry":  # "TELEMETRY seq 31846: device clock jumped…": the sequence number is not for people
        text = scrub(re.sub(r"^\s*TELEMETRY\s+seq\s+\d+:\s*", "", event.message))
        return f"Data from the {device_name(event.source)}: {text}"
    if event.kind == "state":
        d_from, d_to = str(d.get("from", "")), str(d.get("to", ""))
        if d_from and d_to:
            return f"Session {state_words(d_from)} → {state_words(d_to)}."
    if event.kind == "connection":
        link = d.get("link") or (LinkEvent.DISCONNECTED if d.get("disconnect") else None)
        if link == LinkEvent.TELEMETRY_LOST and STALL_DETAIL in d:
            words = stall_sentence(device_name(event.source), d[STALL_DETAIL])
            return f"{words[:1].upper()}{words[1:]}: it was stopped."
        if link in LINK_WORDS:
            return LINK_WORDS[link].format(device=device_name(event.source))
    text = scrub(event.message)
    return text[:1].upper() + text[1:]
