"""Counts in sentences: "1 row", "2 rows", "0 rows". The one helper for every count a user reads (CLIs, store and
recording messages), so no sentence says "1 rows" or hedges with "row(s)"; and `seconds`, every time or duration
`inspect` and the report print, "unknown" in words when its host times are not finite."""

from __future__ import annotations

import math


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and `noun`, the noun in the plural unless `n` is 1 (`plural` when the plural is not noun + "s"), e.g.
    counted(1, "row") == "1 row", counted(3, "entry", "entries") == "3 entries". Large numbers keep no separator."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def session_named(record: int, number: int | None = None) -> str:
    """How every sentence a user reads names a stored session (issue 17's fresh tester, item 6): "session 3 of the
    course (record no. 17)", or "session record no. 17" when the course's count is not known. "Session N" alone
    always means the course's count (the plan's session_number: the sessions before it that delivered something,
    plus one); `record` is the store's id of the session (sessions.id), never called its session number."""
    if number is None:
        return f"session record no. {record}"
    return f"session {number} of the course (record no. {record})"


def first_upper(text: str) -> str:
    """`text` with its first letter in capitals (the rest unchanged), to start a sentence with session_named."""
    return text[:1].upper() + text[1:]


UNKNOWN_TIME = "unknown (no finite host times)"


def seconds(value: float | None, digits: int = 3, unknown: str = UNKNOWN_TIME) -> str:
    """A time or a duration in seconds for a sentence ("2.500 s"), or `unknown` in words when it is None, NaN or ±inf
    (the host times it comes from are not finite): never "nan s", never a silent 0. The one helper for every time
    `inspect` and the report print."""
    if value is None or not math.isfinite(value):
        return unknown
    if abs(value) >= 1e9:  # over 30 years: a damaged or edited file's time, shown short (never 300 digits)
        return f"{value:.4g} s"
    return f"{value:.{digits}f} s"
