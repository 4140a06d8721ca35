"""The command line: `cicatrix COMMAND` once installed, `python main.py COMMAND` in a clone. `--help` lists every
command. Each command lives in its own module with a `register(subparsers)` function; add yours to COMMAND_MODULES."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import NoReturn

# Each module registers its own commands: register(subparsers). Heavy imports (Qt, h5py) stay inside the commands so
# `--help` and the headless commands start fast.
COMMAND_MODULES = (
    "workstation.cli_run",
    "drivers.cli",
    "drivers.emulators.cli",
    "workstation.cli_recording",
    "workstation.cli_protocols",
    "workstation.cli_session",
    "workstation.cli_records",
    "workstation.cli_devices",
    "workstation.cli_report",
    "workstation.cli_settings",
    "workstation.cli_store",
    "workstation.cli_share",
)

log = logging.getLogger("workstation.cli")


def version() -> str:
    """The installed distribution's version (package metadata), or a sentence if this copy is not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("cicatrix")
    except PackageNotFoundError:
        return "unknown (not installed: run `make setup` or `pip install .`)"


class _Parser(argparse.ArgumentParser):
    """argparse's parser whose error names a bad value as it was typed, without Python's escapes: a byte that is
    not UTF-8 (a Latin-1 'é' in a path, given as `\\udce9` by repr) shows as '?', as the terminal guard shows it."""

    def error(self, message: str) -> NoReturn:
        from workstation.terminal import UNDECODED

        super().error(UNDECODED.sub("?", message))


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="Cicatrix: combined scar-revision sessions with a phototherapy handpiece and a microneedling pen.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail to stderr too")
    parser.add_argument("--settings", type=Path, metavar="FILE",
                        help="the settings file to use (default: cicatrix.toml in the config folder; "
                        "`settings` prints where that is)")
    parser.add_argument("--log-dir", type=Path, metavar="DIR",
                        help="write the log and any crash trace to DIR (default: the platform's log folder)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Parse `argv` (default sys.argv[1:]), log the command, run it. Returns the exit status: the command's, 2 for
    bad input (a sentence on stderr), 130 when interrupted, 141 when the output pipe was closed (`| head`), 1 for an
    internal error (its trace in the log file). No control character of any text reaches the terminal raw
    (workstation.terminal)."""
    from workstation.terminal import guarded_terminal

    with guarded_terminal():
        try:
            return _main(argv, prog)
        except KeyboardInterrupt:  # before the command ran (while the log is set up): its own is _main's
            print("interrupted", file=sys.stderr)
            return 130


def _main(argv: list[str] | None, prog: str | None) -> int:
    from workstation.errors import UserError, signal_behind
    from workstation.logsetup import SHOWN, configure_logging, current_log_file
    from workstation.progname import set_program
    from workstation.terminal import one_line

    parser = build_parser(prog)
    set_program(parser.prog)  # every message naming a command names the one the user ran
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    configure_logging(args.log_dir, verbose=args.verbose, command=shlex.join([parser.prog, *argv]))
    log.info("command: %s (version %s)", one_line(shlex.join(argv)) or "(none)", version())
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        try:
            code = int(args.func(args) or 0)
        except Exception as exc:
            if (came := signal_behind(exc)) is not None:  # what ended it: the signal, not the library's cleanup
                raise came from None
            raise
    except UserError as exc:
        log.warning("refused (exit %d): %s", exc.exit_code, exc, extra=SHOWN)
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # the reader of our output went away (`| head`): end quietly, as Unix tools do
        _silence_stdout()
        log.info("output pipe closed by its reader; command ended (exit %d)", BROKEN_PIPE_EXIT)
        return BROKEN_PIPE_EXIT
    except KeyboardInterrupt:
        log.warning("interrupted", extra=SHOWN)
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - the last line of defence: a sentence for the user, the trace in the log
        where = current_log_file()
        log.exception("internal error", extra=SHOWN if where else None)  # the trace: in the file, else on stderr
        detail = f"details were saved to {where}" if where else "details are above"
        print(f"error: an internal error stopped the command; {detail}", file=sys.stderr)
        return 1
    log.info("command ended with exit status %d", code)
    return code


# Everything the program creates (recordings, reports, exports, logs, stores, keys) is readable by the clinic's
# account only: files 0600, folders 0700 (docs/records.md).
PRIVATE_UMASK = 0o077


BROKEN_PIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for a Unix tool whose output pipe was closed


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush of what is still buffered cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (tests): nothing is flushed to a pipe at exit
        pass


def entry(prog: str | None = None) -> None:
    """The process entry (the `cicatrix` console script and main.py): run `main`, then exit with its status. A
    recording a full disk left unclosable ends the process at once, before HDF5's shutdown would crash on it."""
    os.umask(PRIVATE_UMASK)
    code = main(prog=prog)
    recorder = sys.modules.get("workstation.recording.unclosable")
    if recorder is not None:
        recorder.exit_if_a_file_is_unclosable(code)
    sys.exit(code)
