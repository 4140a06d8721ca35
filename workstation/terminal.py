"""What the program writes to a terminal: no control character from any text reaches it raw.

Device words are cleaned where they are read (`drivers.protocol.text`), scenario texts where they are loaded; but a
terminal line is made of many texts (a file name, a typed pseudonym, an area label, a protocol file's title, a
recording's events). Rather than trusting every one of them, `guarded_terminal` puts one guard on stdout and stderr
for the length of a command: ESC, BEL, NUL, the other C0 and C1 controls and DEL become spaces (the rule of
`drivers.protocol.is_control`), a lone surrogate becomes `?`; newlines and tabs stay. What the file or the log holds
is not changed by this: the guard is on the way out to a screen only.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from typing import TextIO

from drivers.protocol import is_control

__all__ = ["UNDECODED", "guarded_terminal", "one_line", "quoted", "terminal_text"]

_KEPT = frozenset("\n\t")
_TABLE = {c: " " for c in range(0xA0) if is_control(chr(c)) and chr(c) not in _KEPT}


def terminal_text(s: str) -> str:
    """`s` as a terminal may show it: controls (but newline and tab) as spaces, lone surrogates as `?`."""
    s = s.translate(_TABLE)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        s = s.encode("utf-8", errors="replace").decode("utf-8")
    return s


# repr() of a byte os.fsdecode could not decode (a Latin-1 'é' typed in a path shows as \udce9): what argparse's own
# messages hold, shown as '?' like the terminal guard shows the byte itself.
UNDECODED = re.compile(r"\\udc[89a-f][0-9a-f]")
_ONE_LINE = str.maketrans("\n\t", "  ")


def quoted(value: object) -> str:
    """A value someone typed (or a file held), for a sentence a user reads: text in single quotes as the terminal
    shows it (`terminal_text`, on one line: an undecodable byte as '?', a control as a space), never Python's repr
    with its escapes ('caf\\udce9', '\\x1b'); anything else (a number, a list) as repr with undecodable bytes as
    '?'. The one helper for every message that shows a typed value (`{value!r}` shows the escapes)."""
    if isinstance(value, str):
        return "'" + terminal_text(value).translate(_ONE_LINE) + "'"
    return UNDECODED.sub("?", terminal_text(repr(value)))


def one_line(s: str) -> str:
    """`s` for one line of a log file: every character that is not printable (controls, line and paragraph
    separators, lone surrogates: a command line's undecodable bytes) written as its escape (\\x1b, \\u2028,
    \\udce9), so a line stays one line and the file stays UTF-8."""
    return "".join(ch if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF else ch.encode("unicode_escape").decode()
                   for ch in s)


class _Guarded:
    """A text stream that passes `terminal_text` of everything written to the stream it wraps."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, s: str) -> int:
        self._stream.write(terminal_text(s))
        return len(s)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> object:  # flush, fileno, isatty, encoding, buffer …
        return getattr(self._stream, name)


@contextlib.contextmanager
def guarded_terminal() -> Iterator[None]:
    """Guard sys.stdout and sys.stderr while the block runs; put back what was there after (tests capture them)."""
    out, err = sys.stdout, sys.stderr
    sys.stdout = _Guarded(out) if out is not None else out  # type: ignore[assignment]
    sys.stderr = _Guarded(err) if err is not None else err  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err
