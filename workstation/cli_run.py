"""`main.py run`: open the live window, on emulated devices (default), on real serial ports, or on a synthetic feed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workstation.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="open the workstation window (simulation by default)",
        description="Open the live window. Without ports, the real drivers talk to device emulators on "
        "pseudo-terminals (simulation); with --light-port/--pen-port they open those serial ports (clinical).",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--simulate", action="store_true", help="emulated devices behind the real drivers (the default)"
    )
    mode.add_argument(
        "--demo", action="store_true", help="a synthetic 2 kHz feed with no driver or emulator (offline UI work)"
    )
    parser.add_argument("--light-port", metavar="PORT", help="serial port of the phototherapy handpiece")
    parser.add_argument("--pen-port", metavar="PORT", help="serial port of the microneedling pen")
    parser.add_argument(
        "--exit-after-first-show",
        action="store_true",
        help="print a JSON line with the time of the first painted window, then quit (start-up benchmark)",
    )
    parser.add_argument(
        "--screenshot",
        type=Path,
        metavar="PNG",
        help="save a picture of the window once both devices have a few seconds of data, then quit",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ports = {name: port for name, port in (("light", args.light_port), ("pen", args.pen_port)) if port}
    if ports and (args.simulate or args.demo):
        raise UserError("Give serial ports for clinical mode, or --simulate/--demo, not both.")

    from PyQt6.QtWidgets import QApplication

    from workstation.bus import SessionBus
    from workstation.plotbuffer import PlotBuffers
    from workstation.ui.live_window import LiveWindow, first_show_report
    from workstation.ui.plots import plotted_channels
    from workstation.ui.sources import DriverRig, SyntheticRig

    app = QApplication.instance() or QApplication(sys.argv[:1])
    bus = SessionBus()
    buffers = PlotBuffers(plotted_channels())
    bus.subscribe(buffers)
    if args.demo:
        rig, title = SyntheticRig(bus), "Cicatrix — demo (synthetic data)"
    elif ports:
        rig, title = DriverRig(bus, ports, simulate=False), "Cicatrix — clinical"
    else:
        rig, title = DriverRig(bus, simulate=True), "Cicatrix — simulation (emulated devices)"
    window = LiveWindow(buffers, rig, title=title)
    if args.exit_after_first_show:

        def report_and_quit() -> None:
            print(first_show_report(), flush=True)
            window.close()

        window.call_on_first_paint(report_and_quit)
    if args.screenshot:
        window.screenshot_when_ready(args.screenshot)
    window.show()
    window.start()
    rig.start()
    try:
        return int(app.exec())
    finally:
        window.plots.stop()
        rig.stop()
