"""`run`: open the workstation window in simulation (default), clinical (serial ports) or replay mode, or the
plain live-plot window on a synthetic feed (`--demo`, for UI work without devices)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from workstation.cli_settings import add_setting_options, settings_from_args
from workstation.errors import UserError
from workstation.words import counted

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="open the workstation window (simulation by default)",
        description="Open the workstation window. Without ports it starts in simulation mode: the real drivers talk to "
        "device emulators on pseudo-terminals and a training store is used. With --light-port/--pen-port (or the ports "
        "of the settings file) it fills in those serial ports for clinical mode (and connects at once with "
        "--operator); with --replay it opens a recording. Clinical sessions use the clinic store and recordings "
        "folder of the settings, and the clinic's protocol folder is loaded with the factory library "
        "(`settings` shows them all). With --simulate, --store FILE is the training store instead, kept after the "
        "window closes (as `session --simulate --store`); the clinic store stays the settings' one.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--simulate", action="store_true", help="emulated devices behind the real drivers (the default)"
    )
    mode.add_argument(
        "--demo", action="store_true", help="a synthetic 2 kHz feed with no driver or emulator (offline UI work)"
    )
    mode.add_argument("--replay", type=Path, metavar="FILE", help="open a recording in the replay view")
    add_setting_options(parser)
    parser.add_argument("--operator", metavar="ID", help="clinical: your operator id (connects at once with the ports)")
    parser.add_argument("--scenario", type=Path, metavar="FILE",
                        help="simulation: start at once with the training patient of this scenario file, or of a "
                        "packaged scenario named so (e.g. combined-uneventful), as `session --scenario`")
    parser.add_argument(
        "--exit-after-first-show",
        action="store_true",
        help="print a JSON line with the time of the first painted window, then quit (start-up benchmark)",
    )
    parser.add_argument(
        "--screenshot",
        type=Path,
        metavar="PNG",
        help="--demo: save a picture of the window once both devices have a few seconds of data, then quit",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    typed_ports = args.light_port or args.pen_port
    if typed_ports and (args.simulate or args.demo or args.replay):
        raise UserError("Give serial ports for clinical mode, or --simulate/--demo/--replay, not both.")
    training_store = None
    if args.simulate and args.store is not None:  # --simulate --store FILE: the training store, as `session` takes it
        from workstation.cli_session import checked_training_store

        given, args = args.store, argparse.Namespace(**{**vars(args), "store": None})  # clinic store: the settings'
        training_store = checked_training_store(given, args)
    settings = settings_from_args(args)  # a UserError naming file and key if the settings file is invalid
    ports = {} if (args.simulate or args.demo or args.replay) else {
        name: settings[f"ports.{name}"] for name in ("light", "pen") if settings[f"ports.{name}"]}
    if args.screenshot and not args.demo:
        raise UserError("--screenshot goes with --demo; the window's screenshots per mode are taken by "
                        "`python -m workstation.ui.screenshots DIR`.")
    scenario = None
    if args.scenario is not None:
        from workstation.session.scenario import resolve_scenario

        scenario = resolve_scenario(args.scenario)
    require_display()
    if args.demo:
        return _run_demo(args)

    from PyQt6.QtWidgets import QApplication

    from workstation.places import training_recordings_dir
    from workstation.ui.live_window import first_show_report
    from workstation.ui.main_window import MainWindow, close_on_terminate, install_excepthook
    from workstation.ui.session_controller import Places

    protocols = settings["paths.protocols"]
    if protocols is not None and not protocols.is_dir():
        raise UserError(f"The clinic protocol folder {protocols} ({settings.setting('paths.protocols').source}) "
                        "is not a folder; fix paths.protocols or give --protocols DIR.")
    protocol_dirs = (protocols,) if protocols is not None else ()
    places = Places(clinic_store=settings.store_target(), training_recordings=training_recordings_dir(),
                    protocol_dirs=protocol_dirs, clinic_recordings=settings["paths.clinic_recordings"])
    refused = refused_clinic_protocols(protocol_dirs, settings.setting("paths.protocols").source)
    if refused:
        log.warning("%s", refused)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(recordings_dir=settings["paths.recordings"], places=places, store_path=training_store,
                        idle_lock_minutes=settings["window.idle_lock_minutes"])
    install_excepthook(window)
    terminated = close_on_terminate(window)  # SIGTERM, SIGHUP: closed as the close button does, saved
    if args.exit_after_first_show:

        def report_and_quit() -> None:
            print(first_show_report(), flush=True)
            window.close()

        window.call_on_first_paint(report_and_quit)
    window.show()
    if ports:
        window.start_page.light_port.setText(ports.get("light", ""))
        window.start_page.pen_port.setText(ports.get("pen", ""))
        if args.operator:
            window.start_page.operator.setText(args.operator)
            window.start_page.choose_clinical()
    elif args.replay:
        window.start_page.replay_path.setText(str(args.replay))
        window.start_page.choose_replay()
    else:
        window.set_mode("simulation")
        if scenario is not None:
            window.choose_simulation(scenario)
    if refused:
        window.notify(refused, "warning")
    code = int(app.exec())
    return terminated() or code


def require_display() -> None:
    """UserError (exit 2) before Qt is started when Linux has no display to open a window on: no DISPLAY nor
    WAYLAND_DISPLAY, and QT_QPA_PLATFORM not set. Qt would otherwise abort the process (exit 134) with text that
    suggests reinstalling."""
    import os

    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UserError("There is no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set): "
                        "start it from a desktop session, or set QT_QPA_PLATFORM=offscreen for a test without a "
                        "screen.")


def refused_clinic_protocols(folders: tuple[Path, ...], source: str) -> str:
    """One sentence naming the clinic protocol files of `folders` the library refused (loaded as the window loads
    them) and where to see why, or "" when none was refused. `source` says where the folder came from."""
    from workstation.progname import command
    from workstation.protocols import load_library

    if not folders:
        return ""
    files = sorted({e.path for e in load_library(folders).errors if any(e.path.is_relative_to(f) for f in folders)})
    if not files:
        return ""
    names = ", ".join(f.name for f in files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
    where = " ".join(str(f) for f in folders)
    were, are = ("was", "is") if len(files) == 1 else ("were", "are")
    return (f"{counted(len(files), 'clinic protocol file')} in {where} ({source}) {were} refused and {are} not "
            f"offered: {names}; "
            f"`{command('protocols check ' + where)}` says why.")


def _run_demo(args: argparse.Namespace) -> int:
    from PyQt6.QtWidgets import QApplication

    from workstation.bus import SessionBus
    from workstation.plotbuffer import PlotBuffers
    from workstation.synthetic_source import SyntheticSource
    from workstation.ui.live_window import LiveWindow, first_show_report
    from workstation.ui.plots import plotted_channels

    app = QApplication.instance() or QApplication(sys.argv[:1])
    bus = SessionBus()
    buffers = PlotBuffers(plotted_channels())
    bus.subscribe(buffers)
    source = SyntheticSource(bus)
    window = LiveWindow(buffers, source, title="Cicatrix — demo (synthetic data)")
    if args.exit_after_first_show:

        def report_and_quit() -> None:
            print(first_show_report(), flush=True)
            window.close()

        window.call_on_first_paint(report_and_quit)
    if args.screenshot:
        window.screenshot_when_ready(args.screenshot)
    window.show()
    window.start()
    source.start()
    try:
        return int(app.exec())
    finally:
        window.plots.stop()
        source.stop()
