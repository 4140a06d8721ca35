"""Counts in sentences: "1 row", "2 rows", "0 rows". The one helper for every count a user reads (CLIs, store and
recording messages), so no sentence says "1 rows" or hedges with "row(s)"."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and `noun`, the noun in the plural unless `n` is 1 (`plural` when the plural is not noun + "s"), e.g.
    counted(1, "row") == "1 row", counted(3, "entry", "entries") == "3 entries". Large numbers keep no separator."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
