"""`python main.py session --simulate --scenario FILE --record PATH`: a whole combined session with no window."""

from __future__ import annotations

import argparse
from pathlib import Path

from workstation.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "session", help="run a whole combined session headless, from a scenario file (simulation)",
        description="Run a combined session with no window: the scenario's patient is entered in a training store, "
        "the dose engine plans the visit, the emulated devices run it through the real drivers while the scenario's "
        "timed faults are injected, and the session is recorded. Exit codes: 0 completed, 3 aborted by an "
        "interlock, 4 stopped by the operator, 5 ended by a device error, 2 bad input. Scenarios ship in seeds/scenarios/.")
    p.add_argument("--simulate", action="store_true", required=True,
                   help="run on the device emulators (required: headless sessions are for simulation only)")
    p.add_argument("--scenario", required=True, type=Path, metavar="FILE", help="scenario TOML file")
    p.add_argument("--record", type=Path, default=Path("recordings"), metavar="PATH",
                   help="recordings folder (the file goes to PATH/YYYY-MM-DD/<uuid>.h5; default: recordings)")
    p.add_argument("--store", type=Path, metavar="FILE",
                   help="training database to use and keep (default: a temporary one, discarded at the end)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from workstation.runner import run_scenario
    from workstation.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    if args.store is not None:
        from workstation.store import clinic_db_path

        if args.store.resolve() == clinic_db_path().resolve():
            raise UserError("A simulated session never writes to the clinic database; give a training store.")
    return run_scenario(scenario, args.record, store_path=args.store).exit_code
