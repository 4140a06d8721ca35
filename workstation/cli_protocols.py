"""`protocols check [DIR]`: validate the factory protocol library, its tables and a clinic's folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from workstation.words import counted


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("protocols", help="the protocol library (factory protocols and the clinic's own)",
                              description="Work with the protocol library: the factory protocols and reference "
                              "tables in seeds/, and a clinic's own protocol folder.")
    sub = p.add_subparsers(dest="protocols_command", metavar="SUBCOMMAND")
    check = sub.add_parser("check", help="validate the factory library and a clinic folder",
                           description="Load the reference tables, every factory protocol and, if DIR is given, "
                           "every *.toml in DIR; print each protocol loaded and every error with its file and key. "
                           "Exit status 0 when everything is valid, 1 when any file has an error.")
    check.add_argument("dir", nargs="?", metavar="DIR",
                       help="the clinic's own protocol folder (default: paths.protocols of the settings, if set)")
    check.set_defaults(func=_check)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def _check(args: argparse.Namespace) -> int:
    from workstation.errors import UserError
    from workstation.protocols import load_library, seeds_dir
    from workstation.settings import load_settings

    extra: list[Path] = []
    if args.dir:
        clinic, source = Path(args.dir), "given on the command line"
    else:
        setting = load_settings(getattr(args, "settings", None)).setting("paths.protocols")
        clinic, source = setting.value, f"paths.protocols of the {setting.source}"
    print(f"factory library: {seeds_dir()}")
    if clinic is not None:
        folder = clinic.expanduser()
        if not folder.is_dir():
            what = "is a file, not a folder" if folder.exists() else "does not exist"
            raise UserError(f"The clinic protocol folder {folder} ({source}) {what}; give the folder that holds the "
                            "clinic's protocol files.")
        print(f"clinic folder: {folder} ({source})")
        extra.append(folder)
    lib = load_library(extra)
    for pid, proto in sorted(lib.protocols.items()):
        print(f"ok     {pid} v{proto.version} ({proto.origin}: {proto.path})\n       {proto.title}")
    print(f"tables {'ok' if lib.tables is not None else 'NOT USABLE'}")
    for err in lib.errors:
        print(f"error  {err}")
    print(f"{counted(len(lib.protocols), 'protocol')} loaded, {counted(len(lib.errors), 'error')}.")
    return 0 if not lib.errors and lib.tables is not None else 1
