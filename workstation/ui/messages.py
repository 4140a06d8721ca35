"""How errors become sentences in the window's message area (never a traceback, never a modal dialog)."""

from __future__ import annotations

import logging

from workstation.errors import UserError
from workstation.session import SessionError

log = logging.getLogger(__name__)

MESSAGE_COLORS = {"error": "#ffcdd2", "warning": "#fff59d", "info": "#e3f2fd"}


def user_text(exc: Exception) -> str:
    """A user's error as its own sentence; anything else as a short line pointing to the log (the trace goes there)."""
    if isinstance(exc, UserError | SessionError):
        text = str(exc)
        return text[:1].upper() + text[1:]
    log.error("unexpected error", exc_info=exc)
    return (f"Something went wrong ({type(exc).__name__}: {exc}). Check the devices and the interlock lights; "
            "the details are in the log.")
