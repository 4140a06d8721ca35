"""Cicatrix workstation, the repository's launcher: `python main.py --help` lists every command. Installed, the same
program is the `cicatrix` command; both run workstation.cli.entry."""

from __future__ import annotations

from workstation.cli import build_parser, entry, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    entry(prog="main.py")
