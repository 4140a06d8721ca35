"""One row of a recording's text tables (`/events`, `/commands`, `/plan`) as the reader gives it: its texts decoded,
its JSON parsed, and what cannot be decoded or parsed kept beside the rest, never an error for the whole file.

A text whose bytes are not UTF-8 (the recorder never writes such bytes: they were damaged on the disk or written by
another program) shows with U+FFFD where the bytes were, and the row's details (events), args (commands) or plan
carry its original bytes as hex under `UNDECODABLE_KEY` (`{"message": "6c69ff..."}`). A JSON text that does not
parse is kept under `unreadable_json`."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from workstation.bus import SEVERITIES, CommandRecord, Event
from workstation.recording.clean import clean_text, given_key, held_cleaned
from workstation.words import counted

UNDECODABLE_KEY = "unreadable_utf8_hex"  # the reader's note: {column: hex of its bytes} for a text that is not UTF-8
EVENT_TEXTS = ("kind", "severity", "source", "message", "details_json")
COMMAND_TEXTS = ("device", "command", "args_json", "result")


def note_in_words(note: Any) -> str:
    """A file's close_note without the HDF5 text that recordings of earlier versions appended in parentheses."""
    t = text(note)
    cuts = [i for i in (t.find(m) for m in (" (Unable to", " (unable to", " ([Errno")) if i >= 0]
    return t[:min(cuts)] if cuts else t


def written(rows: np.ndarray, text_column: str) -> np.ndarray:
    """The rows of a session table that were written: a write that failed (a full disk) can leave rows allocated
    but never written, which read back as time 0 and empty texts (a written row always has a non-empty one)."""
    if not len(rows):
        return rows
    empty = np.array([not text(v) for v in rows[text_column]], dtype=bool) & (rows["t_host_s"] == 0.0)
    return rows[~empty]


def json_value(v: Any, wrap: str = "value") -> dict[str, Any]:
    """A JSON column: its mapping (another value under `wrap`), or the unreadable text kept under `unreadable_json`
    (one bad row never hides the others); every text and key in it by the text rule (clean.held_cleaned: a changed
    one's bytes noted under `raw_hex`)."""
    t = text(v)
    try:
        value = json.loads(t)
    except ValueError:
        value = {"unreadable_json": t}
    return held_cleaned(value if isinstance(value, dict) else {wrap: value})


def text(v: Any) -> str:
    """A text of the file; bytes that are not UTF-8 (damaged) show as U+FFFD, never an error for the whole file."""
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def shown(v: Any) -> str:
    """An attribute's text (a device's model, a unit, the operator's id) by the text rule: no control, format or
    separator character of a changed file reaches a screen (it has no row to note its bytes in)."""
    return clean_text(text(v))[0]


def decoded(r: np.void, columns: tuple[str, ...],
            changed: dict[str, str] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """A table row's text `columns`, each decoded once: the texts (as `text` gives them), and the columns whose
    bytes are not UTF-8 (the writer never writes such bytes: they are damaged, or from another program), each with
    its bytes as hex. A column that is not JSON is given by the recorder's text rule (clean.py: no control, format or
    separator character reaches a screen, a terminal or a CSV; the second fresh tester's U+202E and newline in
    `inspect`, `audit` and the replay window); a valid UTF-8 text it changed has its bytes as hex put in `changed`
    (for `unsafe_texts`)."""
    texts, bad = {}, {}
    for c in columns:
        v = r[c]
        if not isinstance(v, bytes):
            texts[c] = str(v)
            continue
        try:
            texts[c] = v.decode("utf-8")
        except UnicodeDecodeError:
            texts[c], bad[c] = v.decode("utf-8", "replace"), v.hex()
        if not c.endswith("_json"):
            texts[c], original = clean_text(texts[c])
            if original is not None and c not in bad and changed is not None:
                changed[c] = v.hex()
    return texts, bad


def unsafe_texts(values: dict[str, Any], changed: dict[str, str]) -> dict[str, Any]:
    """`values` (details or args) with `raw_hex` noting the bytes of each valid UTF-8 text column the text rule
    changed (`decoded`'s `changed`), beside the recorder's own notes there (those kept)."""
    if not changed:
        return values
    held = values.get("raw_hex")
    return {**values, "raw_hex": {**changed, **(held if isinstance(held, dict) else {})}}


def with_note(values: dict[str, Any], bad: dict[str, str]) -> dict[str, Any]:
    """`values` (a row's details or args) with the reader's `UNDECODABLE_KEY` note; a key of that name already there
    (the sender's own) is kept under one more ` (given)`, as the recorder keeps its own notes' names."""
    if not bad:
        return values
    kept = {(given_key(k) if k == UNDECODABLE_KEY else k): v for k, v in values.items()}
    return {**kept, UNDECODABLE_KEY: bad}


def event_row(r: np.void) -> Event:
    changed: dict[str, str] = {}
    t, bad = decoded(r, EVENT_TEXTS, changed)
    details = unsafe_texts(with_note(json_value(t["details_json"], "details"), bad), changed)
    severity = t["severity"]
    if severity not in SEVERITIES:
        details = {**details, "severity_given": severity}
        severity = "high"
    return Event(float(r["t_host_s"]), t["kind"], severity, t["source"], t["message"], details)


def command_row(r: np.void) -> CommandRecord:
    changed: dict[str, str] = {}
    t, bad = decoded(r, COMMAND_TEXTS, changed)
    args = unsafe_texts(with_note(json_value(t["args_json"], "args"), bad), changed)
    return CommandRecord(float(r["t_host_s"]), t["device"], t["command"], args, t["result"], float(r["t_reply_s"]))


def plan_row(r: np.void) -> tuple[float, Any]:
    t, bad = decoded(r, ("plan_json",))
    plan = with_note(json_value(t["plan_json"], "plan"), bad)
    return float(r["t_host_s"]), plan


def undecodable_words(n: int) -> str:
    """`Recording.undecodable_rows` in words, the same in `inspect` and the replay window."""
    return (f"{counted(n, 'row')} of the events, commands or plans {'holds' if n == 1 else 'hold'} bytes that are "
            "not UTF-8 (damaged on the disk, or written by another program): shown with \N{REPLACEMENT CHARACTER} "
            f"where the bytes were, which the row keeps as hex under {UNDECODABLE_KEY}")
