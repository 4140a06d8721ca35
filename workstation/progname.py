"""The program's own command name, for every message that tells the user a command to run: `cicatrix` when the
installed console script was run, `python main.py` in a clone. One place, so no message names a file an installed
copy does not have."""

from __future__ import annotations

import sys
from pathlib import Path

INSTALLED_NAME = "cicatrix"  # the console script of pyproject.toml [project.scripts]


class _State:
    prog: str | None = None  # set by workstation.cli.main from the prog it parsed with


def set_program(prog: str | None) -> None:
    """Record the command name the user ran (workstation.cli.main calls this with its parser's prog)."""
    _State.prog = prog


def program() -> str:
    """How the user starts this program: `python main.py` for the repository's launcher, else the installed command
    (`cicatrix`). Taken from the recorded prog, else from sys.argv[0]'s file name; a process that is not the
    command line (tests, `python -c`, the window started from a menu) gets the installed name."""
    name = _State.prog or Path(sys.argv[0] if sys.argv and sys.argv[0] else "").name
    if name == "main.py":  # the repository's launcher; any other script (python -m, a test runner) is not a command
        return f"python {name}"
    return name if name.startswith(INSTALLED_NAME) else INSTALLED_NAME


def command(args: str) -> str:
    """The full command line to type for `args`, e.g. command("protocols check") -> "cicatrix protocols check"."""
    return f"{program()} {args}"
