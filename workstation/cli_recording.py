"""`python main.py inspect FILE`, `export FILE --csv DIR` and `audit FILE`: look into a session recording."""

from __future__ import annotations

import argparse
import math
import sys

from workstation.errors import UserError
from workstation.words import counted


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "inspect", help="summarise a session recording (.h5)",
        description="Print a recording's summary: session, devices, duration, samples per device, gaps, events, "
        "interlock trips and the dose delivered per area. The file is only read, never changed, except that the "
        "\"open for writing\" mark a killed recorder left is cleared when no checksum was taken of it yet.")
    p.add_argument("file", help="a recording, e.g. recordings/2026-11-23/<session-uuid>.h5")
    p.set_defaults(func=_inspect)
    p = subparsers.add_parser(
        "export", help="export a session recording to CSV files",
        description="Write one CSV file per device (t_s = session seconds, then every channel), events.csv and "
        "commands.csv (t_s and t_reply_s in session seconds, t_host_s and t_reply_host_s on the host's clock; "
        "nan: no reply) into DIR, optionally only between --start and --end (session seconds).")
    p.add_argument("file", help="a recording (.h5)")
    p.add_argument("--csv", metavar="DIR", required=True, help="folder to write the CSV files into")
    p.add_argument("--start", metavar="S", type=float, default=None, help="first session second to export")
    p.add_argument("--end", metavar="S", type=float, default=None, help="session second to stop at (excluded)")
    p.set_defaults(func=_export)
    p = subparsers.add_parser(
        "audit", help="replay a recording through this program's safety monitor and compare the trips",
        description="Feed the recording's telemetry, step limits, device reports, E-stops and resets to a fresh "
        "safety monitor running on the recording's clock, and compare its interlock trips with the recorded ones: "
        "reproduced, missing (recorded, not made now) and extra (made now, not recorded). Exit code 0 when the "
        "trips are the same, 1 when they differ, 2 for a file that is not a recording or is damaged. The file is "
        "only read.")
    p.add_argument("file", help="a recording (.h5)")
    p.add_argument("--tolerance-ms", type=float, default=50.0,
                   help="how far apart a recorded and a replayed cause may be and still match (default 50 ms)")
    p.set_defaults(func=_audit)


def _inspect(args: argparse.Namespace) -> int:
    from pathlib import Path

    from workstation.cli_store import clear_crash_mark
    from workstation.recording.mark import remove_stale_ballast
    from workstation.recording.reader import Recording, refuse_if_written_elsewhere
    from workstation.recording.summary import format_summary, summarize

    refuse_if_written_elsewhere(args.file)  # fourth fresh tester: only verify refused a file being written
    cleared = clear_crash_mark(Path(args.file)) if Path(args.file).is_file() else None
    if cleared:
        print(f"note: {cleared}")
    if Path(args.file).is_file() and (removed := remove_stale_ballast(Path(args.file))):
        print(f"note: {removed}")
    with Recording.open(args.file) as rec:
        print(format_summary(rec, summarize(rec)))
    return 0


def _export(args: argparse.Namespace) -> int:
    for name in ("start", "end"):
        v = getattr(args, name)
        if v is not None and not math.isfinite(v):
            raise UserError(f"--{name} must be a number of seconds, not {v}.")
    if args.start is not None and args.end is not None and args.end <= args.start:
        raise UserError(f"--end ({args.end:g} s) must come after --start ({args.start:g} s).")
    import time

    from workstation.recording.export import export_csv
    from workstation.recording.reader import Recording, refuse_if_written_elsewhere

    refuse_if_written_elsewhere(args.file)
    with Recording.open(args.file) as rec:
        duration = rec.duration_s
        span = f"{rec.path.name}, which spans 0–{duration:.1f} s"
        if args.start is not None and args.start >= duration:
            raise UserError(f"--start {args.start:g} s is at or after the end of {span}: nothing was exported.")
        if args.end is not None and args.end <= 0:
            raise UserError(f"--end {args.end:g} s is at or before the start of {span}: nothing was exported.")
        _notes(rec)
        lo = 0.0 if args.start is None else args.start
        hi = duration if args.end is None else args.end
        if lo < 0 or hi > duration:  # partly outside: say what is exported, never cut it silently
            print(f"note: the range asked for ({lo:g}–{hi:g} s) goes beyond {span}; exporting "
                  f"{max(lo, 0.0):g}–{min(hi, duration):.1f} s.", file=sys.stderr, flush=True)
        last = [time.monotonic()]

        def progress(done: int, total: int) -> None:  # a line every 2 s on long work, on stderr
            if time.monotonic() - last[0] >= 2.0:
                last[0] = time.monotonic()
                print(f"exporting: {done:,} of {total:,} rows ({100 * done / max(total, 1):.0f} %)", file=sys.stderr,
                      flush=True)

        nonfinite: dict[str, int] = {}
        for path in export_csv(rec, args.csv, args.start, args.end, progress, nonfinite):
            print(path)
        for name, n in nonfinite.items():
            if n:
                they = "it is not a measurement; skip it" if n == 1 else "they are not measurements; skip them"
                print(f"note: {name}.csv has {counted(n, 'sample')} with a non-finite value (written as nan or inf): "
                      f"{they} in any sum or maximum.")
    return 0


def _audit(args: argparse.Namespace) -> int:
    if not (math.isfinite(args.tolerance_ms) and args.tolerance_ms >= 0):
        raise UserError(f"--tolerance-ms must be a number of milliseconds ≥ 0, not {args.tolerance_ms}.")
    from workstation.recording.reader import Recording, refuse_if_written_elsewhere
    from workstation.session.audit import audit, audit_exit_code, format_audit

    refuse_if_written_elsewhere(args.file)
    with Recording.open(args.file) as rec:
        _notes(rec)
        result = audit(rec, args.tolerance_ms / 1000.0)
        print(format_audit(rec, result))
        return audit_exit_code(rec, result)


def _notes(rec) -> None:
    """What a reader of the output must know before trusting it: a partial file, a checksum that does not match."""
    from workstation.recording.summary import check_checksum

    if rec.partial:
        print(f"note: {rec.path.name} is partial: {rec.partial_reason}")
    check = check_checksum(rec.path)
    if check.intact:
        print(f"note: {rec.path.name}: {check.text}")
    else:  # changed, or cannot be proven unchanged (as the report and replay say): a warning either way
        print(f"WARNING: {rec.path.name} is not proven intact: {check.text}; what follows comes from the file as it "
              "is now.")
