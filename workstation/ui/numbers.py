"""Numbers typed by a person: one reader for every number field of the window (the MED on the patient page, the
plan's Change field). A decimal comma is read only when it cannot be a thousands separator; `1,500` is refused with a
sentence rather than guessed (it would be 1500 in one country and 1.5 in another). Messages quote what was typed and
show the number read in full, with its unit (never `1e+05`, never a rounded figure that contradicts a range)."""

from __future__ import annotations

import math
import re

import numpy as np

from workstation.errors import UserError

_PLAIN = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+$")  # 1,500 / 12,345,678: a thousands separator or a decimal comma


def exact(value: float, unit: str = "") -> str:
    """`value` written out in full (5000.4, 123456789, 0.25), with its unit; `—` when not finite."""
    if not math.isfinite(value):
        return "—"
    text = np.format_float_positional(float(value), trim="-", precision=6)
    return f"{text} {unit}".strip()


def number_from_text(text: str, what: str, unit: str, example: str) -> float:
    """The finite number typed in `text`; UserError in words when it is empty, not a plain number (nan, inf, words,
    two separators) or an ambiguous comma (`1,500`). `what` names the field ("MED"), `unit` its unit ("mJ/cm²"),
    `example` a typical value ("400")."""
    typed = text.strip()
    of_unit = f" of {unit}" if unit else ""
    if not typed:
        raise UserError(f"Type the {what} as a number{of_unit} (for example {example}).")
    if _THOUSANDS.match(typed):
        whole = exact(float(typed.replace(",", "")))
        either = f"{whole} or {exact(float(typed.replace(',', '.')))}" if typed.count(",") == 1 else whole
        raise UserError(f"“{typed}” could be read as {either}: type the {what} without a thousands comma, with a "
                        f"decimal point if it has decimals (for example {example}). Nothing was changed.")
    if not _PLAIN.match(typed):
        raise UserError(f"Type the {what} as a number{of_unit} (for example {example}), not “{typed}”.")
    value = float(typed.replace(",", "."))
    if not math.isfinite(value):
        raise UserError(f"Type the {what} as a number{of_unit} (for example {example}), not “{typed}”.")
    return value
