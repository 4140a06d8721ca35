"""Everything that reaches a recording passes here first: text becomes valid UTF-8 without NUL characters or any
other control, format or separator character (one line, shown as written), and JSON
becomes strict (RFC 8259: no NaN, no Infinity), so that HDF5's variable-length strings accept it and any JSON parser
(MATLAB, jq, a browser) reads it.

Nothing is lost silently: the original bytes of a changed text are kept as hex, and a non-finite number is written
as `null` with its value named in a note (`docs/recording-format.md`, "Text and JSON").
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from drivers.textrule import blank_unsafe

RAW_HEX_KEY = "raw_hex"  # details key: {"<where>": "<original UTF-8 bytes as hex>"} for every text that was changed
NON_FINITE_KEY = "non_finite"  # details key: {"<where>": "nan" | "inf" | "-inf"} for every number written as null


def clean_text(value: object) -> tuple[str, str | None]:
    """`(text, original_hex)`: `text` is valid UTF-8 on one line, with no NUL and no other unsafe character;
    `original_hex` is None when nothing changed.

    Trailing NULs (padding) are dropped, embedded ones become U+FFFD, undecodable bytes and lone surrogates become
    U+FFFD; every other control, format (bidirectional, zero-width, BOM, soft hyphen …), line or paragraph separator
    character (`drivers.textrule`, the driver's rule too) becomes a space. `original_hex` is the hex of the bytes as
    received (a str's UTF-8 bytes, surrogate escapes restored).
    """
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        text = raw.decode("utf-8", errors="replace")
    else:
        text = value if isinstance(value, str) else str(value)
        try:
            text.encode("utf-8")
            raw = None
        except UnicodeEncodeError:
            raw = _bytes_of(text)
            text = raw.decode("utf-8", errors="replace")
    cleaned = blank_unsafe(text.rstrip("\0").replace("\0", "\ufffd"))
    if raw is None and cleaned == text:
        return text, None
    return cleaned, (raw if raw is not None else text.encode("utf-8")).hex()


def _bytes_of(text: str) -> bytes:
    try:
        return text.encode("utf-8", errors="surrogateescape")  # bytes a decoder could not read, restored
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="surrogatepass")


def pointer(where: str, step: object) -> str:
    """The JSON Pointer (RFC 6901) of `step` (a key as written, or a list index) inside the value at `where`: every
    note names what it is about so, `~` and `/` in a key escaped as `~0` and `~1`, so no two paths meet."""
    return f"{where}/{str(step).replace('~', '~0').replace('/', '~1')}"


KEY_NOTE = "key:"  # raw_hex["key:<pointer>"]: the original bytes of the key of the value at <pointer>


def plain(value: Any, where: str, raw_hex: dict[str, str], non_finite: dict[str, str],
          reserved: tuple[str, ...] = ()) -> Any:
    """`value` as JSON-able Python with clean text and finite numbers; what was changed is noted under its JSON
    Pointer (`where` is the value's own, "" for the document). A dict key that had to change (NULs, bad bytes, not
    text) takes a free name if its cleaned form is another key's, one of `reserved` or of their ` (given)` family
    (the notes' names, at the top): `<key> (key 2)` …, its original bytes in raw_hex["key:<pointer>"]."""
    if value is None or isinstance(value, bool | np.bool_):
        return None if value is None else bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        if math.isfinite(f):
            return f
        non_finite[where] = "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")
        return None
    if isinstance(value, dict):
        keys = [(k, *clean_text(k)) for k in value]
        # a key that had to change (NULs, bad bytes, not text) never takes the name of another: {"a": 1, "a\0": 2}
        # keeps both, the second as "a (key 2)" with its original bytes in raw_hex
        taken = {key for k, key, hexed in keys if hexed is None and isinstance(k, str)} | set(reserved)
        out = {}
        for (k, key, hexed), v in zip(keys, value.values(), strict=True):
            if hexed is not None or not isinstance(k, str):
                base, n = key, 1
                while key in taken or _of_family(key, reserved):
                    n += 1
                    key = f"{base} (key {n})"
                taken.add(key)
                if hexed is None and key != base:  # a number or other key renamed: what it was, as text
                    hexed = base.encode("utf-8").hex()
            path = pointer(where, key)
            if hexed is not None:
                raw_hex[KEY_NOTE + path] = hexed
            out[key] = plain(v, path, raw_hex, non_finite)
        return out
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        items = value.tolist() if isinstance(value, np.ndarray) else value
        return [plain(v, pointer(where, i), raw_hex, non_finite) for i, v in enumerate(items)]
    text, hexed = clean_text(value)  # str, bytes, and anything else as its str() (as json's default=str did)
    if hexed is not None:
        raw_hex[where] = hexed
    return text


def dumps(value: Any) -> str:
    """Strict JSON text (sorted keys, UTF-8 characters kept). Never raises for NaN, Infinity, NULs or odd types."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False)


T_GIVEN_KEY = "t_host_s_given"  # details key: the time a row came with when the recorder stamped it on arrival
NOTE_KEYS = (RAW_HEX_KEY, NON_FINITE_KEY)


GIVEN = " (given)"


def given_key(key: str) -> str:
    """Where a sender's own detail named like one of the recorder's notes (`raw_hex`, `non_finite`,
    `t_host_s_given`), or like one set aside already (`raw_hex (given)` …), is kept: one more ` (given)`."""
    return key + GIVEN


def given_back(key: str, names: tuple[str, ...]) -> str:
    """The name the sender gave a detail that `set_aside(…, names)` renamed: one ` (given)` less on a name of the
    family of `names`; any other name as it is."""
    return key.removesuffix(GIVEN) if key.endswith(GIVEN) and _of_family(key, names) else key


def _of_family(key: object, names: tuple[str, ...]) -> bool:
    """A note's name, or a note's name with ` (given)` once or more."""
    if not isinstance(key, str):
        return False
    while key.endswith(GIVEN):
        key = key.removesuffix(GIVEN)
    return key in names


def set_aside(details: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """`details` with each key of the notes' family (a name of `names`, with ` (given)` zero or more times) given
    one more ` (given)`: the bare name then holds the recorder's note alone, no two keys meet, and the renaming
    is undone by `given_back`. The same dict when no key is of the family."""
    if not any(_of_family(key, names) for key in details):
        return details
    return {(given_key(key) if _of_family(key, names) else key): value for key, value in details.items()}


def _merge_note(out: dict, key: str, notes: dict[str, str]) -> None:
    """Add the cleaner's `notes` under `key` without losing what `out` already holds there: a dict (the notes of
    details read back from a recording, re-written by `export`) is merged, a path already noted keeping both
    (the new one as '<path> (again)'); anything else moves to `given_key(key)`."""
    if not notes:
        return
    held = out.get(key)
    if isinstance(held, dict):
        merged = dict(held)
        for path, note in notes.items():
            merged[path if path not in merged else f"{path} (again)"] = note
        out[key] = merged
        return
    if key in out:
        out.update(set_aside({k: out.pop(k) for k in list(out) if _of_family(k, (key,))}, (key,)))
    out[key] = notes


def json_with_notes(value: Any, *, notes_held: bool = False) -> str:
    """Strict JSON of `value`; a dict gets `raw_hex` / `non_finite` notes for what had to be changed. A dict from
    outside (an identity, a calibration, a plan) has its own keys of those names set aside (`set_aside`); with
    `notes_held` (details read back from a recording, re-written by `export`) the notes it holds are kept and the
    new ones merged into them."""
    if notes_held:
        return dumps(held_cleaned(value))
    raw_hex: dict[str, str] = {}
    non_finite: dict[str, str] = {}
    if isinstance(value, dict):
        value = set_aside(value, NOTE_KEYS)
    out = plain(value, "", raw_hex, non_finite, NOTE_KEYS)
    if isinstance(out, dict):
        _merge_note(out, RAW_HEX_KEY, raw_hex)
        _merge_note(out, NON_FINITE_KEY, non_finite)
    return dumps(out)


def held_cleaned(value: Any) -> Any:
    """A JSON value read back from a recording (details, args, a plan, an identity), by the text rule: every text and
    key in it (a file changed by another program may hold any character there), what was changed noted in its
    `raw_hex` beside the notes it holds (kept). The same value, notes and all, for what the recorder wrote."""
    raw_hex: dict[str, str] = {}
    non_finite: dict[str, str] = {}
    out = plain(value, "", raw_hex, non_finite)
    if isinstance(out, dict):
        _merge_note(out, RAW_HEX_KEY, raw_hex)
        _merge_note(out, NON_FINITE_KEY, non_finite)
    return out


def clean_fields(texts: dict[str, object], details: dict[str, Any]) -> tuple[dict[str, str], str]:
    """Clean the text columns of a row and its details; return `(texts, details_json)`.

    A text column that had to change has its original bytes in `raw_hex["<column>"]`, a detail in
    `raw_hex["<JSON Pointer>"]` (`/text`, `/x/0`: a column's name never starts with `/`), a changed key in
    `raw_hex["key:<JSON Pointer>"]`; a non-finite detail is null, named in `non_finite["<JSON Pointer>"]`. The two
    note names are
    the cleaner's alone: a caller's own detail named `raw_hex` or `non_finite` (or so with ` (given)` already) is
    written with one more ` (given)` (set_aside; given_back undoes it), always: never overwritten by a note, never
    taken for one. A key that cleaning would turn into another key's name, or a note's (`t_host_s_given` too),
    is written as `<key> (key 2)` … with its original bytes in raw_hex (plain).
    """
    raw_hex: dict[str, str] = {}
    non_finite: dict[str, str] = {}
    out_texts = {}
    for name, value in texts.items():
        out_texts[name], hexed = clean_text(value)
        if hexed is not None:
            raw_hex[name] = hexed
    out = plain(set_aside(dict(details), NOTE_KEYS), "", raw_hex, non_finite, NOTE_KEYS + (T_GIVEN_KEY,))
    if raw_hex:
        out[RAW_HEX_KEY] = raw_hex
    if non_finite:
        out[NON_FINITE_KEY] = non_finite
    return out_texts, dumps(out)


def clean_attr(value: Any) -> Any:
    """An HDF5 attribute value: text cleaned (no NUL, valid UTF-8), numbers and others unchanged."""
    if isinstance(value, str | bytes):
        return clean_text(value)[0]
    return value
