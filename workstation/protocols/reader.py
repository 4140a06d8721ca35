"""The one strict reader for the program's TOML files (protocols, reference tables, trainer scenarios): every problem
becomes a ProtocolError naming the file, the dotted key and what is wrong (with the allowed range), and reading goes
on so one pass reports every problem in the file. `finish()` then reports every key the file has but nobody read (a
typo must not fall back to a default) and every NaN or ±inf anywhere in the document.

Use: `data, err = read_toml(path)`; `r = Reader(path, data)`; read with `r.number(...)`, `r.text(...)`, ...;
`r.finish()`; `r.errors` is the complete list."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from workstation.protocols.model import ProtocolError
from workstation.terminal import quoted

_MISSING = object()


BOM = b"\xef\xbb\xbf"


def read_toml(path: Path) -> tuple[dict[str, Any] | None, ProtocolError | None]:
    """Parse one file; a syntax error becomes a ProtocolError with the parser's line and column. The file must be
    UTF-8 text (a leading UTF-8 byte-order mark, as some Windows editors write, is accepted and ignored); other bytes
    are an error naming the file and where the first bad byte is."""
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        return None, ProtocolError(path, "", "is a folder, not a file; give the file itself.")
    except OSError as exc:
        return None, ProtocolError(path, "", f"could not be read ({exc.strerror}).")
    try:
        text = raw.removeprefix(BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        return None, ProtocolError(path, "", f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line} cannot "
                                   "be read as UTF-8); save the file as UTF-8 and check again.")
    try:
        return tomllib.loads(text), None
    except tomllib.TOMLDecodeError as exc:
        return None, ProtocolError(path, "", f"is not valid TOML ({exc}); fix the syntax and check again.")


def fmt(value: float) -> str:
    """A number as a person reads it: whole numbers in full (2147483647, not 2.14748e+09), others with every digit
    that tells them apart (0.7000001, not 0.7)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(float(value))


def _describe(value: Any) -> str:
    return {bool: "true/false", int: "a whole number", float: "a decimal number", str: "text", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


class Reader:
    """Reads one parsed TOML document. `seen` is shared with sub-readers of rows of the same document, so `finish()`
    knows every key read through any of them."""

    def __init__(self, path: Path, data: dict[str, Any], *, seen: set[tuple[int, str]] | None = None,
                 asked: set[tuple[int, str]] | None = None) -> None:
        self.path = path
        self.data = data
        self.errors: list[ProtocolError] = []
        self.seen: set[tuple[int, str]] = set() if seen is None else seen
        # Keys asked for but absent: with `seen`, the full set of keys a table may hold (for "known keys here").
        self.asked: set[tuple[int, str]] = set() if asked is None else asked

    def sub(self, base: str, row: Any) -> Reader:
        """A reader of one row of a list (e.g. base "items[3]"), sharing what is read with this one."""
        return Reader(self.path, {base: row}, seen=self.seen, asked=self.asked)

    def finish(self, *, allow_nonfinite: bool = False) -> list[ProtocolError]:
        """Report keys nobody read and non-finite numbers anywhere; return all errors."""
        flagged = {e.key for e in self.errors}

        def walk(node: Any, prefix: str) -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    full = f"{prefix}.{k}" if prefix else str(k)
                    if (id(node), k) not in self.seen:
                        if full not in flagged:
                            known = sorted({str(kk) for (cid, kk) in self.seen | self.asked if cid == id(node)})
                            hint = f"known keys here: {', '.join(known)}" if known else "remove it"
                            self.error(full, f"is not a known key here; {hint}.")
                        continue
                    walk(v, full)
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    walk(v, f"{prefix}[{i}]")
            elif isinstance(node, float) and not math.isfinite(node) and not allow_nonfinite and prefix not in flagged:
                self.error(prefix, f"is {quoted(node)}, not a finite number; give a number.")  # never read: no range

        walk(self.data, "")
        return self.errors

    def error(self, key: str, message: str) -> None:
        self.errors.append(ProtocolError(self.path, key, message))

    def raw(self, key: str) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if isinstance(node, dict) and part in node:
                self.seen.add((id(node), part))
                node = node[part]
                continue
            name, _, rest = part.partition("[")
            if not rest or not isinstance(node, dict) or name not in node:
                if isinstance(node, dict):
                    self.asked.add((id(node), name))
                return _MISSING
            self.seen.add((id(node), name))
            node = node[name]
            for idx in rest.rstrip("]").split("]["):
                if not isinstance(node, list) or not idx.isdigit() or int(idx) >= len(node):
                    return _MISSING
                node = node[int(idx)]
        return node

    def has(self, key: str) -> bool:
        return self.raw(key) is not _MISSING

    def _get(self, key: str, required: bool, what: str) -> Any:
        value = self.raw(key)
        if value is _MISSING and required:
            self.error(key, f"is missing; add {what}.")
        return value

    def text(self, key: str, *, required: bool = True, default: str | None = None) -> str | None:
        value = self._get(key, required, "some text")
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            self.error(key, f"must be text, not {_describe(value)} ({quoted(value)}).")
            return None
        if not value.strip():
            self.error(key, "is empty; give some text.")
            return None
        return value.strip()

    def number(self, key: str, lo: float, hi: float | None, *, required: bool = True,
               default: float | None = None, integer: bool = False) -> Any:
        kind = "a whole number" if integer else "a number"
        allowed = f"between {fmt(lo)} and {fmt(hi)}" if hi is not None else f"of at least {fmt(lo)}"
        value = self._get(key, required, f"{kind} {allowed}")
        if value is _MISSING:
            return default
        if isinstance(value, float) and not math.isfinite(value):
            self.error(key, f"is {quoted(value)}, not a finite number; give {kind} {allowed}.")
            return None
        ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type:
            self.error(key, f"must be {kind} {allowed}, not {_describe(value)} ({quoted(value)}).")
            return None
        if value < lo or (hi is not None and value > hi):
            self.error(key, f"is {fmt(value)}, outside the allowed range: it must be {kind} {allowed}.")
            return None
        return value

    def integer(self, key: str, lo: int, hi: int, **kw: Any) -> int | None:
        """A whole number within lo–hi: every integer key has an upper bound (none may overflow downstream)."""
        return self.number(key, lo, hi, integer=True, **kw)

    def boolean(self, key: str, *, default: bool = False) -> bool:
        value = self.raw(key)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.error(key, f"must be true or false, not {_describe(value)}.")
            return default
        return value

    def choice(self, key: str, choices: Iterable[str], *, required: bool = True,
               default: str | None = None) -> str | None:
        choices = tuple(choices)
        value = self._get(key, required, "one of " + ", ".join(choices))
        if value is _MISSING:
            return default
        if value not in choices:
            self.error(key, f"is {quoted(value)}; it must be one of: {', '.join(choices)}.")
            return None
        return value

    def choice_list(self, key: str, choices: Iterable[str], *, required: bool = True) -> tuple[str, ...] | None:
        choices = tuple(choices)
        value = self._get(key, required, "a list of " + ", ".join(choices))
        if value is _MISSING:
            return None if required else ()
        if not isinstance(value, list):
            self.error(key, f"must be a list, not {_describe(value)}.")
            return None
        if required and not value:
            self.error(key, "is empty; list at least one of: " + ", ".join(choices) + ".")
            return None
        bad = [v for v in value if v not in choices]
        if bad:
            self.error(key, f"has unknown value(s) {', '.join(map(repr, bad))}; allowed: {', '.join(choices)}.")
            return None
        if len(set(value)) != len(value):
            self.error(key, "lists a value twice; list each once.")
            return None
        return tuple(value)

    def table(self, key: str, *, required: bool = True) -> dict[str, Any] | None:
        value = self._get(key, required, "a table")
        if value is _MISSING:
            return None
        if not isinstance(value, dict):
            self.error(key, f"must be a table ([{key}]), not {_describe(value)}.")
            return None
        return value

    def only_keys(self, section: str, allowed: Iterable[str]) -> None:
        """Flag keys the schema does not know: a typo must not silently fall back to a default."""
        node = self.data if not section else self.raw(section)
        if not isinstance(node, dict):
            return
        allowed = set(allowed)
        for k in node:
            if k not in allowed:
                full = f"{section}.{k}" if section else k
                self.error(full, f"is not a known key here; known keys: {', '.join(sorted(allowed))}.")
