"""Cicatrix workstation: command-line entry point. `python main.py --help` lists every command."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import tempfile
import traceback

# Each module registers its own commands: register(subparsers). Heavy imports (Qt, h5py) stay inside the commands so
# `--help` and the headless commands start fast.
COMMAND_MODULES = (
    "workstation.cli_run",
    "drivers.cli",
    "drivers.emulators.cli",
    "workstation.cli_recording",
    "workstation.cli_protocols",
    "workstation.cli_session",
    "workstation.cli_devices",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="Cicatrix: combined scar-revision sessions with a phototherapy handpiece and a microneedling pen.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from workstation.errors import UserError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - the last line of defence: a sentence for the user, the trace in a file
        fd, path = tempfile.mkstemp(prefix="cicatrix-crash-", suffix=".txt")
        with os.fdopen(fd, "w") as f:
            traceback.print_exc(file=f)
        print(f"error: an internal error stopped the command; details were saved to {path}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
