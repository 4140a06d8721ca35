"""`main.py patient export ID --out DIR` (a patient's pseudonymous bundle) and `main.py verify FILE` (a recording
against its .sha256 and the clinic store's index)."""

from __future__ import annotations

import argparse
from pathlib import Path

from workstation.cli_settings import add_setting_options, settings_from_args
from workstation.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("patient", help="a patient's records in the clinic store",
                              description="Work with a patient's records in the clinic store.")
    sub = p.add_subparsers(dest="patient_command", metavar="SUBCOMMAND")
    exp = sub.add_parser(
        "export", help="write a patient's pseudonymous bundle (rows as JSON, recordings, reports)",
        description="Write OUT/<ID>/ with patient.json (every row of the patient's treatment under the pseudonym "
        "only: no name, birth date or contact), and each session's recording, .sha256 and PDF report. Exit 0 when "
        "everything was copied intact, 1 when a recording is missing or changed (the rest is still written), 2 "
        "for bad input.")
    exp.add_argument("pseudonym", metavar="ID", help="the patient's pseudonymous id, e.g. CX-1A2B3C4D")
    exp.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder to write the bundle in")
    add_setting_options(exp, ("paths.store", "paths.recordings"))
    exp.set_defaults(func=_export)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])

    v = subparsers.add_parser(
        "verify", help="check a recording against its .sha256 and the clinic store's index",
        description="Recompute a recording's SHA-256 and compare it with the .sha256 file written when it was "
        "closed and with the checksum the clinic store keeps for its session. Exit 0 when every checksum found "
        "matches, 1 when one differs or none is found, 2 for bad input.")
    v.add_argument("file", type=Path, metavar="FILE", help="a recording, e.g. …/recordings/2026-11-23/<uuid>.h5")
    add_setting_options(v, ("paths.store",))
    v.set_defaults(func=_verify)


def _open_existing_store(args: argparse.Namespace):
    from workstation.store import ClinicStore

    settings = settings_from_args(args)
    path = settings["paths.store"]
    if not Path(path).is_file():
        return None, settings
    return ClinicStore.open(path, training=False, recordings_root=settings["paths.recordings"]), settings


def _export(args: argparse.Namespace) -> int:
    from workstation.store.bundle import write_patient_bundle

    store, settings = _open_existing_store(args)
    if store is None:
        raise UserError(f"There is no clinic store at {settings['paths.store']}; give the right one with --store "
                        "(or paths.store in the settings file).")
    with store:
        bundle = write_patient_bundle(store, args.pseudonym, args.out)
    for f in bundle.files:
        print(f"wrote  {bundle.folder / f}")
    for problem in bundle.problems:
        print(f"problem {problem}")
    print(f"{len(bundle.files)} file(s) in {bundle.folder}, {len(bundle.problems)} problem(s).")
    return 1 if bundle.problems else 0


def _verify(args: argparse.Namespace) -> int:
    from workstation.recording.summary import check_checksum

    path = args.file.expanduser()
    if not path.is_file():
        raise UserError(f"{path} is not a file; give the path of a recording (.h5).")
    results: list[bool] = []
    sidecar = check_checksum(path)
    print(f"{'ok   ' if sidecar.intact else 'FAIL ' if sidecar.intact is False else '-    '} .sha256: {sidecar.text}")
    if sidecar.intact is not None:
        results.append(sidecar.intact)
    store, settings = _open_existing_store(args)
    if store is None:
        print(f"-     store: no clinic store at {settings['paths.store']}")
    else:
        with store:
            session_id = store.session_for_recording(path)
            if session_id is None:
                print(f"-     store: {store.path} does not index this recording")
            else:
                intact = store.verify_recording(session_id)
                results.append(intact)
                print(f"{'ok   ' if intact else 'FAIL '} store: session {session_id} in {store.path}: "
                      + ("SHA-256 matches the index" if intact else "SHA-256 DOES NOT MATCH the index"))
    if not results:
        print("no checksum to compare with: the recording is not intact as far as anyone can tell.")
        return 1
    return 0 if all(results) else 1
