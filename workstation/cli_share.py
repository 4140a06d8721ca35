"""`main.py recording sync`: list or copy the recordings this workstation has still to copy to the clinic's
recordings share (`paths.clinic_recordings`; workstation/recording/share.py)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from workstation.cli_settings import add_setting_options, settings_from_args
from workstation.errors import UserError
from workstation.words import counted

EXIT_PENDING = 1  # --once / --list: some recordings are still not copied


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("recording", help="the clinic's recordings share: copies still to make",
                              description="Recordings and the clinic's recordings share.")
    sub = p.add_subparsers(dest="recording_command", metavar="COMMAND", required=True)
    s = sub.add_parser(
        "sync", help="copy the recordings still to copy to the clinic's recordings share, and verify them there",
        description="Copy every recording this workstation has not yet copied to the clinic's recordings share "
        "(paths.clinic_recordings), verify each copy there (SHA-256 and signature) and record it in the store. A "
        "share that is down is retried with a growing delay until Ctrl+C; with --once one pass is made. Exit code 0 "
        "when nothing is left to copy, 1 when some recordings are still waiting (--once, --list), 2 bad input. The "
        "recordings on this workstation are only read, never changed or deleted.")
    s.add_argument("--once", action="store_true", help="one pass, then exit (1 if some are still waiting)")
    s.add_argument("--list", action="store_true", help="only list the recordings still to copy")
    s.add_argument("--training", action="store_true",
                   help="the store is a training store (kept with `session --store`), not the clinic's")
    add_setting_options(s, ("paths.store", "paths.clinic_recordings"))
    s.set_defaults(func=_sync)


def _sync(args: argparse.Namespace) -> int:
    from workstation.keys import workstation_name
    from workstation.progname import command
    from workstation.recording.share import RETRY_MAX_S, ShareCopier, ShareStatus
    from workstation.session.waiting import held_words, missing_words, rooms_here
    from workstation.store import ClinicStore

    settings = settings_from_args(args)
    share = settings["paths.clinic_recordings"]
    store_path = settings["paths.store"] if args.training else settings.store_target()
    if share is None:
        raise UserError("No recordings share is set: give --clinic-recordings DIR or set paths.clinic_recordings in "
                        f"the settings file (`{command('settings')}` shows the one in force).")
    if isinstance(store_path, Path) and not store_path.is_file():
        from workstation.store.connection import no_store_error

        raise no_store_error(str(store_path), "training" if args.training else "clinic")

    def open_store() -> ClinicStore:
        return ClinicStore.open(store_path, training=args.training)

    if args.list:  # only reads: a store that does not exist (a URL's file included) is refused, never created
        with ClinicStore.open(store_path, training=args.training, read_only=True) as store:
            todo = [(store.session_label(sid), local) for sid, local, _sha in
                    store.recordings_to_share(workstation_name(), queue=False)]
            here = rooms_here(store)
            crashed = [(store.session_label(r["id"]), Path(r["recording_path"])) for r in store.crashed_unindexed()
                       if Path(r["recording_path"]).is_file() or r["room"] in here]
            elsewhere = [(store.session_label(sid), where) for sid, where in store.crashed_elsewhere(here)]
            target = ShareStatus(store.clinic_share() or share, 0, configured=share)  # where the copies go now
        for label, local in todo:
            print(f"{label}: {local}")
        for label, local in crashed:
            if not local.is_file():
                print(f"{label}: its recording {missing_words(local)}")
                continue
            held = held_words(local)
            print(f"{label}: {local} (crashed session's recording, not yet recovered here: "
                  + (f"it is {held})" if held else "a pass without --list recovers it — checksum, signature, index — "
                     "and copies it)"))
        print(f"{counted(len(todo) + len(crashed), 'recording')} of this workstation ({workstation_name()}) still to "
              f"copy to {target.share}")
        if target.settings_text():
            print(target.settings_text())
        for label, where in elsewhere:
            print(f"{label}: recording still on {where}'s disk, not yet copied (that workstation copies it)")
        return EXIT_PENDING if todo or crashed else 0
    copier = ShareCopier(open_store, share)
    delay = copier.retry_first_s
    while True:
        status = copier.sync()
        if status.problem is None and not status.pending:
            print(f"{counted(status.copied, 'recording')} copied to {status.share} and verified; nothing is left to "
                  "copy here")
            for line in (status.elsewhere_text(), status.settings_text()):
                if line:
                    print(line)
            return 0
        print(status.text() if status.problem else f"{counted(status.pending, 'recording')} still to copy to "
              f"{status.share}", flush=True)
        if args.once:
            return EXIT_PENDING
        print(f"trying again in {delay:g} s (Ctrl+C stops; nothing is lost)", flush=True)
        time.sleep(delay)
        delay = min(delay * 2, RETRY_MAX_S)


def set_clinic_share(store_path: Path | str, folder: Path, settings) -> int:  # noqa: ANN001 - Settings
    """`store set-recordings-root --clinic-share DIR`: the clinic's recordings share moves, for every room. Refused
    (UserError, nothing recorded) when a file written in DIR does not read back the same (not reachable, not
    writable, full: share_checks.probe_share), or when the store records copies and none of them is under DIR (move
    the share's files first)."""
    from workstation.recording.share import ShareProblem
    from workstation.recording.share_checks import probe_share
    from workstation.store import ClinicStore

    with ClinicStore.open(store_path, training=False) as store:
        old = store.clinic_share()
        try:
            probe_share(folder)
        except ShareProblem as exc:
            raise UserError(f"{folder} is not taken as the clinic's recordings share: {exc}. Nothing was changed "
                            f"(the clinic's share stays {old or 'unset until the first verified copy'}).") from exc
        found, copied = store.shares_found_under(folder)
        if copied and not found:
            raise UserError(f"None of the {copied} copies the store records on the clinic's share {old} is under "
                            f"{folder}; move the share's files there first (the clinic's share stays {old}).")
        store.set_clinic_share(folder)
    print(f"the clinic's recordings share, for EVERY room, in {store_path}: {old or '(none)'} -> {folder}; {found} "
          f"of {copied} verified copies found there; a file written there read back the same.")
    print("unchanged: each workstation's own recordings folder.")
    mine = settings["paths.clinic_recordings"]
    print(f"now set [paths] clinic_recordings = \"{folder}\" in EVERY workstation's settings file"
          + (" (this one's says so already)." if mine == folder else
             f" (this one's says {mine or 'none'}: {settings.file}); every room's copies follow the store at their "
             "next pass (the window's within a minute), and until its settings are changed a room says they differ."))
    return 0
