"""`patient export ID --out DIR` (a patient's pseudonymous bundle), `verify FILE` (a recording against its .sha256
and the clinic store's index) and `store set-recordings-root DIR` (after moving the recordings folder). The reading
commands never change the store."""

from __future__ import annotations

import argparse
from pathlib import Path

from workstation.cli_settings import add_setting_options, settings_from_args
from workstation.errors import UserError
from workstation.words import counted


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
    exp.add_argument("--out", required=True, metavar="DIR", help="folder to write the bundle in")
    add_setting_options(exp, ("paths.store", "paths.recordings"))
    exp.set_defaults(func=_export)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])

    v = subparsers.add_parser(
        "verify", help="check a recording against its .sha256 and the clinic store's index",
        description="Recompute a recording's SHA-256 and compare it with the .sha256 file written when it was "
        "closed and with the checksum the clinic store keeps for its session. Exit 0 when every checksum found "
        "matches, 1 when one differs, none is found, or the store does not index a recording it should (a store "
        "given by --store or the settings file, or a recording in the clinical recordings folder); 2 for bad "
        "input, such as a store given that does not exist, or a file with neither .sha256 nor .sig beside it that is "
        "not a Cicatrix recording at all.")
    v.add_argument("file", type=Path, metavar="FILE", help="a recording, e.g. …/recordings/2026-11-23/<uuid>.h5")
    add_setting_options(v, ("paths.store",))
    v.set_defaults(func=_verify)

    st = subparsers.add_parser("store", help="the clinic store itself (its recordings root)",
                               description="Work with the clinic store itself.")
    ssub = st.add_subparsers(dest="store_command", metavar="SUBCOMMAND")
    root = ssub.add_parser(
        "set-recordings-root", help="tell the store where THIS workstation's recordings are now (after moving its "
        "folder)",
        description="The store indexes each recording relative to the recordings folder of the workstation that "
        "made it. After moving THIS workstation's recordings folder (e.g. to another disk), give its new place here; "
        "the store then finds this workstation's recordings there. Only this workstation's folder changes: other "
        "rooms' folders (each on its own disk) and the clinic's recordings share ([paths] clinic_recordings) never "
        "change here. Refused when none of this workstation's indexed recordings is under DIR (move them first). "
        "Also set [paths] recordings in the settings file so new recordings go there. With --clinic-share, DIR is "
        "instead the clinic's recordings share's new place, for EVERY room (after moving the share's files there).")
    root.add_argument("folder", metavar="DIR", help="the recordings folder's new place (its full path)")
    root.add_argument("--clinic-share", action="store_true",
                      help="DIR is the clinic's recordings share (clinic-wide), not this workstation's folder")
    add_setting_options(root, ("paths.store",))
    root.set_defaults(func=_set_root)
    from workstation.cli_store_server import register as register_server

    register_server(ssub)
    st.set_defaults(func=lambda args: (st.print_help(), 0)[1])


def _open_existing_store(args: argparse.Namespace, *, required: bool):
    """The clinic store in force, opened read-only (its recordings root is never changed here), with the settings.
    A store that does not exist is an error (exit 2) when `required` or when it was given (option or settings
    file); else (None, settings)."""
    from workstation.settings import DEFAULT_SOURCE
    from workstation.store import ClinicStore

    settings = settings_from_args(args)
    path, source = settings.store_target(), settings.setting("paths.store").source
    if isinstance(path, Path) and not path.is_file():
        if required or source != DEFAULT_SOURCE:
            from workstation.store.connection import no_store_error

            raise no_store_error(str(path), source=source)
        return None, settings
    from workstation.cli_records import say_trail_findings

    store = ClinicStore.open(path, training=False, recordings_root=settings["paths.recordings"], read_only=True)
    say_trail_findings(store)
    return store, settings


def _export(args: argparse.Namespace) -> int:
    from workstation.store.bundle import write_patient_bundle

    if not args.out.strip():  # Path("") would be the current folder
        raise UserError("--out is empty; give the folder to write the bundle in (e.g. --out /media/usb).")
    store, _ = _open_existing_store(args, required=True)
    with store:
        bundle = write_patient_bundle(store, args.pseudonym, Path(args.out))
    for f in bundle.files:
        print(f"wrote  {bundle.folder / f}")
    for problem in bundle.problems:
        print(f"problem {problem}")
    print(f"{counted(len(bundle.files), 'file')} in {bundle.folder}, {counted(len(bundle.problems), 'problem')}.")
    return 1 if bundle.problems else 0


def _verify(args: argparse.Namespace) -> int:
    from workstation.recording.summary import check_checksum

    path = args.file.expanduser()
    store, settings = None, None
    if not path.is_file():  # gone from this disk: the store may index its verified copy on the clinic's share
        store, settings = _open_existing_store(args, required=False)
        copy = _share_copy_of(store, path)
        if copy is None:
            if store is not None:
                store.close()
            raise UserError(f"{path} is not a file; give the path of a recording (.h5).")
        print(f"note: {path} is not on this disk; checking its verified copy on the clinic's share, {copy}")
        path = copy
    from workstation.recording.reader import in_use_error

    in_use = in_use_error(path)  # being written by another program: its bytes change, no tamper alarm (exit 2)
    if in_use is not None:
        if store is not None:
            store.close()
        raise in_use
    if settings is None:
        store, settings = _open_existing_store(args, required=False)  # a store given that does not exist: exit 2
    if (not_one := _not_a_recording(path)) is not None:  # after the store's own refusals, as every reading command
        if store is not None:
            store.close()
        raise not_one
    cleared = clear_crash_mark(path, store)
    if cleared:
        print(f"note: {cleared}")
    results: list[bool] = []
    sidecar = check_checksum(path)
    mark = "WARN " if sidecar.sidecar_wrong else "ok   " if sidecar.intact else "FAIL " if sidecar.intact is False else "-    "
    print(f"{mark} .sha256: {sidecar.text}")
    if sidecar.intact is not None:
        results.append(sidecar.intact)
    if store is None:
        print(f"-     store: no clinic store at {settings['paths.store']} (default place; --store names one)")
    else:
        with store:
            session_id = store.session_for_recording(path)
            if session_id is None:
                expected = _store_should_index(path, settings)
                print(f"{'FAIL ' if expected else '-    '} store: {store.path} does not index this recording"
                      + (f" ({expected})" if expected else ""))
                if expected:
                    results.append(False)
            else:
                intact = store.verify_recording(session_id, file=path)
                results.append(intact)
                print(f"{'ok   ' if intact else 'FAIL '} store: {store.session_label(session_id)} in {store.path}, "
                      f"{_which_copy(store, session_id, path)}: "
                      + ("SHA-256 matches the index" if intact else "SHA-256 DOES NOT MATCH the index"))
    if not results:
        print("no checksum to compare with: the recording is not intact as far as anyone can tell.")
        return 1
    if all(results) and (refused := _open_refusal(path)) is not None:  # unchanged since closed, yet unreadable
        print(f"FAIL  file: {refused}")
        return 1
    return 0 if all(results) else 1


def _open_refusal(path: Path) -> Exception | None:
    """Why the recording at `path` cannot be opened (RecordingError, NotARecording among them), or None. A file its
    writer could not close whole (a size limit set below it mid-session) was checksummed and signed as it was, and
    `verify` said "intact" of bytes no tool could read (a fresh tester of issue 12, nineteenth session)."""
    from workstation.recording.errors import RecordingError
    from workstation.recording.reader import Recording

    try:
        with Recording.open(path):
            return None
    except RecordingError as exc:
        return exc


def _not_a_recording(path: Path) -> Exception | None:
    """inspect's sentence (exit 2) for a file with neither .sha256 nor .sig beside it that is no Cicatrix recording at
    all (0 bytes, text, an HDF5 file of another program), else None. Before, `verify` called such a file "not closed by
    the recorder" and exited 1 (a fresh tester of issue 12). With a sidecar beside it the bytes are compared as they
    are: a recording overwritten with anything is a mismatch, not "not a recording"."""
    from workstation.recording.damaged import NotARecording
    from workstation.recording.format import checksum_path, signature_path

    if checksum_path(path).exists() or signature_path(path).exists():
        return None
    refused = _open_refusal(path)  # damaged, truncated, unclosed: a recording; the checksum's words say what is missing
    return refused if isinstance(refused, NotARecording) else None


def _share_copy_of(store, path: Path) -> Path | None:  # noqa: ANN001 - ClinicStore or None
    """The verified copy on the clinic's share of the recording the store indexes at `path`, if it is there."""
    if store is None:
        return None
    session_id = store.session_for_recording(path)
    copy = store.shared_path(session_id) if session_id is not None else None
    return copy if copy is not None and copy.is_file() else None


def _which_copy(store, session_id: int, path: Path) -> str:  # noqa: ANN001 - ClinicStore
    """Which copy of the session's recording `path` is: the clinic share's verified copy, or the original."""
    copy = store.shared_path(session_id)
    if copy is not None and copy.resolve() == path.resolve():
        return f"the clinic share's verified copy ({path})"
    holder = store.recording_holder(session_id)
    return f"the recording on {'this workstation' if holder in (None, store.workstation) else holder}'s disk ({path})"


def clear_crash_mark(path: Path, store=None) -> str | None:
    """Clear a killed recorder's "open for writing" mark in `path` when no checksum was taken of it yet (not
    indexed by `store`, or by the clinic store in force when none is given; workstation.recording.mark). Returns
    the sentence to print, or None. For `verify` and `inspect`."""
    from workstation.recording.mark import clear_unclaimed_mark, open_mark

    try:
        if not open_mark(path):
            return None
    except OSError:
        return None
    if store is None:
        try:
            store, _ = _open_existing_store(argparse.Namespace(), required=False)
        except UserError:
            return None  # an unreadable settings file or store: nothing is proven unindexed, leave the file
        if store is not None:
            with store:
                return clear_unclaimed_mark(path, store.session_for_recording(path) is not None)
    return clear_unclaimed_mark(path, store is not None and store.session_for_recording(path) is not None)


def _store_should_index(path: Path, settings) -> str:
    """Why the store in force should index this recording (so its absence is a failure), or "" when it need not:
    the store was given (option or settings file), or the recording lies in the clinical recordings folder."""
    from workstation.settings import DEFAULT_SOURCE

    if settings.setting("paths.store").source != DEFAULT_SOURCE:
        return f"the store was given: {settings.setting('paths.store').source}"
    if path.resolve().is_relative_to(Path(settings["paths.recordings"]).resolve()):
        return "the recording is in the clinical recordings folder"
    return ""


def _set_root(args: argparse.Namespace) -> int:
    from workstation.recording.share_checks import given_folder
    from workstation.store import ClinicStore

    folder = given_folder(args.folder, "the clinic's recordings share" if args.clinic_share else
                          "this workstation's recordings folder")
    settings = settings_from_args(args)
    path = settings.store_target()
    if isinstance(path, Path) and not path.is_file():
        from workstation.store.connection import no_store_error

        raise no_store_error(str(path), source=settings.setting("paths.store").source)
    if args.clinic_share:
        from workstation.cli_share import set_clinic_share

        return set_clinic_share(path, folder, settings)
    with ClinicStore.open(path, training=False) as store:
        old, host = store.recordings_root, store.workstation
        found, indexed = store.recordings_found_under(folder)
        if indexed and not found:
            which = "The one recording" if indexed == 1 else f"None of the {indexed} recordings"
            verb = "is not" if indexed == 1 else "is"
            raise UserError(f"{which} this workstation ({host}) indexes {verb} under {folder}; move its recordings "
                            f"folder there first (its root stays {old}).")
        store.set_recordings_root(folder)
        others = {name: root for name, root in store.recordings_roots().items() if name != host}
    print(f"this workstation's ({host}) recordings folder in {path}: {old or '(none)'} -> {folder}; {found} of "
          f"its {counted(indexed, 'indexed recording')} found there.")
    print("unchanged: " + ("; ".join(f"{name}'s folder {root}" for name, root in others.items()) or
                           "no other workstation records a folder") + "; the clinic's recordings share "
          "([paths] clinic_recordings in each workstation's settings).")
    if found < indexed:
        print(f"warning: {counted(indexed - found, 'indexed recording')} {'is' if indexed - found == 1 else 'are'} not "
              f"under {folder}; `verify` names {'it' if indexed - found == 1 else 'them'} as missing.")
    if settings["paths.recordings"] != folder:
        print(f"note: new recordings still go to {settings['paths.recordings']} "
              f"({settings.setting('paths.recordings').source}); set [paths] recordings = \"{folder}\" in "
              f"{settings.file}.")
    return 0
