"""`python main.py report RECORDING [--out FILE.pdf] [--store S]`: the session report drawn from a recording, without
the window (the same PDF the window's *Write PDF report* writes)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from workstation.errors import UserError
from workstation.words import counted


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report", help="write a session's PDF report from its recording",
        description="Draw the report of a session from its recording: per step, irradiance and dose against the "
        "target (light) or depth and stroke rate (pen) over the step's own time span, the interlock trips, the UV "
        "delivered and the aftercare, with a sign-off for the operator. With --store, the response recorded for "
        "that session in the clinic (or training) store is included in words. The recording is only read.")
    p.add_argument("recording", help="a recording (.h5)")
    p.add_argument("--out", metavar="FILE.pdf", default=None,
                   help="where to write the PDF (default: beside the recording, <name>-report.pdf)")
    p.add_argument("--store", metavar="S", default=None,
                   help="the clinic store (SQLite file) that holds the session's response")
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from workstation.ui.report_data import read_report

    path = Path(args.recording)
    if not path.is_file():
        raise UserError(f"There is no recording {path}: give the path of a .h5 file in recordings/.")
    out = Path(args.out) if args.out else path.with_name(path.stem + "-report.pdf")
    if out.suffix.lower() != ".pdf":
        raise UserError(f"The report is a PDF: give --out a name ending in .pdf, not {out.name}.")
    _check_folder(out.absolute().parent)
    from workstation.recording.reader import refuse_if_written_elsewhere

    refuse_if_written_elsewhere(path)
    data = read_report(path)
    if args.store:
        from workstation.store import ClinicStore

        store_path = Path(args.store)
        if not store_path.is_file():
            raise UserError(f"There is no store {store_path}: give the clinic store's file to --store.")
        with ClinicStore.open(store_path, training=data.training, read_only=True) as store:
            data = read_report(path, store)
    if data.check_integrity():  # the same check as inspect, verify, audit and export; the PDF says it too
        print(data.integrity_warning, file=sys.stderr)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # a PDF needs fonts, not a screen
    from PyQt6.QtGui import QGuiApplication

    from workstation.ui.report import log_qt_messages, write_session_report

    log_qt_messages()  # Qt's own warnings go to the log; the terminal gets one sentence
    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - fonts need an application
    drawn = write_session_report(data, out)  # UserError in words when it cannot be written
    print(f"report written: {out} ({counted(len(data.steps), 'step')}, {len(drawn)} plotted"
          f"{', response included' if data.responses else ''})")
    return 0


def _check_folder(folder: Path) -> None:
    """The folder --out names exists and this account may write in it, checked before anything is drawn."""
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise UserError(f"The folder {folder} for the report {what}: create it first, or give --out a file in an "
                        "existing folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)  # (root's os.access says no there too)
        raise UserError(f"The folder {folder} for the report "
                        + ("is on a read-only disk" if read_only else "is not writable by this account")
                        + ": give --out a file in a folder you may write to.")
