"""Whether a patient's identity shows in a text (an export, a log, a plan): each value in the forms it would take,
never a bare fragment that turns up by chance (a birth year's four digits appear in uuids, epoch seconds, hex
hashes and binary files: `test_store`'s export failed a loaded run on one)."""

from __future__ import annotations

import re
from datetime import date


def identity_shown(text: str, *, names: tuple[str, ...] = (), born: date | None = None, contact: str = "") -> list[str]:
    """The forms of the identity found in `text`: each name; the birth date as ISO, day/month/year either way and
    digits only; its year as a number of its own (not inside a word, a uuid or a longer number); the contact with and
    without its spaces."""
    forms = list(names)
    if born is not None:
        forms += [born.isoformat(), born.strftime("%d/%m/%Y"), born.strftime("%m/%d/%Y"), born.strftime("%Y%m%d"),
                  born.strftime("%d.%m.%Y")]
    if contact:
        forms += [contact, contact.replace(" ", "")]
    found = [f for f in forms if f and f in text]
    if born is not None and re.search(rf"(?<![\w-]){born.year}(?![\w-])", text):
        found.append(f"{born.year} (the birth year)")
    return found
