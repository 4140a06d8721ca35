"""`python main.py session --simulate --scenario FILE --record PATH`: a whole combined session with no window."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from workstation.cli_settings import share_option
from workstation.errors import Terminated, UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "session", help="run a whole combined session headless, from a scenario file (simulation)",
        description="Run a combined session with no window: the scenario's patient is entered in a training store, "
        "the dose engine plans the visit, the emulated devices run it through the real drivers while the scenario's "
        "timed faults are injected, and the session is recorded. Exit codes: 0 completed, 3 aborted by an "
        "interlock, 4 stopped by the operator, 5 ended by a device error, 2 bad input. Scenarios ship in seeds/scenarios/.")
    p.add_argument("--simulate", action="store_true", required=True,
                   help="run on the device emulators (required: headless sessions are for simulation only)")
    p.add_argument("--scenario", required=True, type=Path, metavar="FILE",
                   help="scenario TOML file, or the name of a packaged one (e.g. combined-uneventful; "
                   "`protocols check` shows where the factory library is)")
    p.add_argument("--record", type=Path, default=None, metavar="DIR",
                   help="the FOLDER to record into, not a file name: the recording is written to "
                   "DIR/YYYY-MM-DD/<uuid>.h5 (default: the training-recordings folder `settings` shows)")
    p.add_argument("--store", type=Path, metavar="FILE",
                   help="training database to use and keep (default: a temporary one, discarded at the end)")
    p.add_argument("--share", type=share_option, metavar="DIR",
                   help="then copy the recording to this folder (a recordings share) and verify it there; a share "
                   "that is down is said in one line and does not change the exit code")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from workstation.places import training_recordings_dir
    from workstation.session.runner import run_scenario
    from workstation.session.scenario import load_scenario, resolve_scenario

    record_dir = args.record.expanduser() if args.record is not None else training_recordings_dir()
    if record_dir.suffix.lower() in (".h5", ".hdf5"):
        raise UserError(f"--record takes a folder, not a file name: {record_dir} ends in {record_dir.suffix}. Give "
                        "the folder; the recording is written to FOLDER/YYYY-MM-DD/<uuid>.h5.")
    scenario = load_scenario(resolve_scenario(args.scenario))
    store = checked_training_store(args.store, args)
    with _terminate_as_exit() as signals:
        share = args.share.expanduser().absolute() if args.share is not None else None
        return run_scenario(scenario, record_dir, store_path=store, share=share, pending_signal=signals.pending,
                            settled=signals.settle).exit_code


def checked_training_store(store: Path | str | None, settings_args: argparse.Namespace) -> Path | None:
    """The training store a simulation keeps (`session --simulate --store`, `run --simulate --store`): a FILE on
    this computer, never a URL and never the clinic database of the settings `settings_args` give. UserError if not."""
    if store is None:
        return None
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:/", str(store)):  # Path folds the //
        raise UserError(f"--store takes a training store FILE, not a URL ({str(store).split(':/')[0]}://…): a "
                        "simulated session keeps its training store on this computer, never on the clinic's server.")
    from workstation.cli_settings import settings_from_args

    if Path(store).resolve() == settings_from_args(settings_args)["paths.store"].resolve():
        raise UserError("A simulated session never writes to the clinic database; give a training store.")
    return Path(store)


class _Signals:
    """What a headless run is told of SIGTERM, SIGHUP and Ctrl+C (`_terminate_as_exit`): `pending()`, the signal's
    exception once one came (None before), for the run's checkpoints; `settle()`, once the session is saved: a signal
    after it is only noted (the session has nothing left to stop, and the exit status printed stands), and a second
    one ends the process at once (a share copy that hangs)."""

    def __init__(self) -> None:
        self.came: list[int] = []
        self.settled = False

    def pending(self) -> BaseException | None:
        if not self.came:
            return None
        return KeyboardInterrupt() if self.came[0] == signal.SIGINT else Terminated(128 + self.came[0])

    def settle(self) -> None:
        self.settled = True

    def handle(self, signum: int, _frame: object) -> None:
        first = not self.came
        self.came.append(signum)
        if self.settled:
            if not first:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
            return
        if signum == signal.SIGINT:  # Python's own Ctrl+C, noted
            raise KeyboardInterrupt
        signal.signal(signum, signal.SIG_DFL)  # a second one kills at once
        raise Terminated(128 + signum)


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[_Signals]:
    """SIGTERM and SIGHUP (its terminal closed, an ssh connection dropped) end the session as Ctrl+C does: the
    visit's teardown stops the devices, journals what the recording shows was delivered and closes the session's row
    (exit 143, 129), as the window does on either (ui.main_window.close_on_terminate). A second one kills at once
    (the next start then closes the session as crashed, from its recording).

    Yields the run's `_Signals`. A handler's exception is raised at whatever line the main thread is on, and C code
    there may swallow it (a SIGTERM inside h5py's import ran the whole session, exit 0): the run's checkpoints raise
    `pending()` again. Once the run has settled, the handlers stay (only noting) until the process ends: restored to
    the default, a signal in that last moment killed a run that had printed "exit code 0" (eleventh session)."""
    signals = _Signals()
    if threading.current_thread() is not threading.main_thread():
        yield signals
        return
    before = {sig: signal.signal(sig, signals.handle) for sig in (signal.SIGTERM, signal.SIGHUP)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        before[signal.SIGINT] = signal.signal(signal.SIGINT, signals.handle)
    try:
        yield signals
    finally:
        if not signals.settled:
            for sig, handler in before.items():
                if signal.getsignal(sig) == signals.handle:  # not one a first signal set to the default
                    signal.signal(sig, handler)
