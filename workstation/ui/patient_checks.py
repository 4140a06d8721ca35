"""Checks of what is typed on the patient page: the identity (names and a possible birth date), and the MED against
the connected light's range (refused outside it, never clamped). Each raises UserError with a sentence."""

from __future__ import annotations

import datetime as dt
from typing import Any

from workstation.errors import UserError
from workstation.store.records import Identity
from workstation.terminal import quoted
from workstation.ui.numbers import exact, number_from_text


def typed_identity(family: str, given: str, born: str) -> Identity | None:
    """The identity typed in the form, None if nothing was typed. UserError if it is incomplete or impossible."""
    if not (family or given or born):
        return None
    if not family or not given:
        raise UserError("Type both the family name and the given name (or leave the identity empty).")
    birth = None
    if born:
        try:
            birth = dt.date.fromisoformat(born)
        except ValueError:
            raise UserError(f"Birth date {quoted(born)} is not a date: type it as YYYY-MM-DD.") from None
        if not dt.date(1900, 1, 1) <= birth <= dt.date.today():
            raise UserError(f"Birth date {birth.isoformat()} is impossible: check it.")
    return Identity(family, given, birth)


def med_from_text(text: str, light: Any) -> tuple[float, str]:
    """(MED in mJ/cm², the light's model) from the typed text; UserError when it is empty, not a number, or outside
    the range the connected light can deliver (an MED outside it cannot have been measured on it)."""
    if not text.strip():
        raise UserError("Type the MED in mJ/cm² (read at 24 h), then save it.")
    model = light.identity.model if light is not None and light.identity else None
    if model is None:
        raise UserError("Connect the light to record an MED: it is kept per device model.")
    med = number_from_text(text, "MED", "mJ/cm²", "400")
    low, high = dose_range(light)
    if not low <= med <= high:
        raise UserError(f"An MED of {exact(med, 'mJ/cm²')} is outside what the {model} can deliver "
                        f"({exact(low)}–{exact(high, 'mJ/cm²')}): check the reading and type it again. "
                        "Nothing was saved.")
    return med, model


def dose_range(light: Any) -> tuple[float, float]:
    """The light's declared target-dose range (mJ/cm²): an MED outside it cannot have been measured on it."""
    bound = next((b for b in light.INFO.bounds if b.name == "target_dose_mj_cm2"), None)
    return (bound.minimum, bound.maximum) if bound is not None else (1.0, 5000.0)


def differs(typed: Identity, on_file: Identity) -> bool:
    """Names compared without case or surrounding blanks; a birth date counts only when both have one."""
    def norm(name: str) -> str:
        return " ".join(name.split()).casefold()

    dates_differ = typed.birth_date is not None and on_file.birth_date is not None and \
        typed.birth_date != on_file.birth_date
    return (norm(typed.family_name) != norm(on_file.family_name) or norm(typed.given_name) != norm(on_file.given_name)
            or dates_differ)
