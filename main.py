"""Cicatrix workstation, the repository's launcher: `python main.py --help` lists every command. Installed, the same
program is the `cicatrix` command; both run workstation.cli.main."""

from __future__ import annotations

import sys

from workstation.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main(prog="main.py"))
