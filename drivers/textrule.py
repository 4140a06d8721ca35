"""The one rule for the characters no text may carry raw to a file, a log line or a screen (issue 12).

A character is *unsafe* when its Unicode category is Cc (C0 and C1 controls: NUL, ESC, BEL, newline, tab, NEL, DEL),
Cf (format characters: the bidirectional controls U+202A–U+202E, U+2066–U+2069, U+200E/U+200F and U+061C, the
zero-width ones U+200B–U+200D, the byte order mark U+FEFF, the soft hyphen U+00AD …), Zl (U+2028 LINE SEPARATOR)
or Zp (U+2029 PARAGRAPH SEPARATOR), or when Python's `str.splitlines` would end a line at it. Such a character can
break one line of a log or an event list into two (a forged row), reverse what follows it on a screen, or hide text.

The driver's cleaner (`drivers.protocol.text`, `clean_text`) and the recorder's (`workstation.recording.clean`)
both take their rule from here: one rule, one place (drivers/ imports nothing of the application, so it lives here).
"""

from __future__ import annotations

import unicodedata

__all__ = ["UNSAFE_CATEGORIES", "blank_unsafe", "has_unsafe", "is_unsafe"]

UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
# every character str.splitlines ends a line at (\n \r \v \f \x1c \x1d \x1e \x85 \u2028 \u2029), taken from Python
# itself (all of them lie below U+3000), so a future Python's extra line break is one too
_LINE_BREAKS = frozenset(ch for ch in map(chr, range(0x3000)) if len(f"x{ch}x".splitlines()) > 1)


def is_unsafe(ch: str) -> bool:
    """`ch` is a control, format, line or paragraph separator character, or a line break of `str.splitlines`."""
    return ch in _LINE_BREAKS or unicodedata.category(ch) in UNSAFE_CATEGORIES


def has_unsafe(text: str) -> bool:
    """`text` holds at least one unsafe character (`is_unsafe`). Fast for the usual printable text."""
    if text.isprintable():  # C speed: no Cc, Cf, Zl, Zp (nor Zs other than the space, Co, Cn, Cs) in it
        return False
    return any(is_unsafe(ch) for ch in text)


def blank_unsafe(text: str, replacement: str = " ") -> str:
    """`text` with every unsafe character replaced by `replacement` (one for one: columns stay where they were)."""
    if not has_unsafe(text):
        return text
    return "".join(replacement if is_unsafe(ch) else ch for ch in text)
