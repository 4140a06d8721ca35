"""`main.py operators add|list|disable` and `main.py trail verify|show`: the clinic's accounts and audit trail."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from workstation.cli_settings import add_setting_options, settings_from_args
from workstation.errors import UserError
from workstation.progname import command
from workstation.terminal import quoted
from workstation.words import counted


def register(sub: argparse._SubParsersAction) -> None:
    ops = sub.add_parser("operators", help="the clinic's operator accounts (administrator)",
                         description="Operator accounts in the clinic store. The first account must be an "
                                     "administrator; after that, an administrator signs in to add or disable one.")
    osub = ops.add_subparsers(dest="operators_command", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    add_setting_options(common, ("paths.store",))
    common.add_argument("--password-stdin", action="store_true",
                        help="read passwords from standard input, one a line (administrator's first), for scripts")
    add = osub.add_parser("add", parents=[common], help="create an account")
    add.add_argument("account", help="account name, e.g. dr-a")
    add.add_argument("--role", required=True, choices=("clinician", "trainer", "engineer", "administrator"))
    add.add_argument("--name", required=True, help="the holder's display name")
    add.add_argument("--admin", metavar="ACCOUNT", help="the administrator who creates it (not for the first account)")
    add.set_defaults(func=_add)
    lst = osub.add_parser("list", parents=[common], help="list accounts, roles and whether they are active")
    lst.set_defaults(func=_list)
    dis = osub.add_parser("disable", parents=[common], help="disable an account (it is kept, never deleted)")
    dis.add_argument("account")
    dis.add_argument("--reason", required=True)
    dis.add_argument("--admin", metavar="ACCOUNT", required=True)
    dis.set_defaults(func=_disable)

    trail = sub.add_parser("trail", help="the clinic store's audit trail",
                           description="Every create, change and delete of clinical data, append-only and "
                                       "hash-chained: each row carries the SHA-256 of the row before it, so "
                                       "a changed or removed row breaks the chain.")
    tsub = trail.add_subparsers(dest="trail_command", metavar="ACTION", required=True)
    ver = tsub.add_parser("verify", help="check the chain; exit 0 intact, 1 broken (names the first broken row)")
    add_setting_options(ver, ("paths.store",))
    ver.set_defaults(func=_verify)
    rep = tsub.add_parser(
        "repair", help="put back trail triggers found missing or disabled, noting that in the trail",
        description="Put back every trigger of the audit trail found missing, disabled or changed (run with the "
        "store owner's rights), and add one trail row per trigger saying what was found, by whom it was put back "
        "and when: writes made while it was missing are not in the trail, and `trail verify` goes on listing the "
        "repair. Exit 0 when nothing was missing, 1 when something was put back.")
    add_setting_options(rep, ("paths.store",))
    rep.set_defaults(func=_repair)
    show = tsub.add_parser("show", help="print the trail, oldest first")
    add_setting_options(show, ("paths.store",))
    show.add_argument("--table", help="only this table (e.g. areas)")
    show.add_argument("--last", type=int, metavar="N", help="only the last N rows")
    show.set_defaults(func=_show)

    keys = sub.add_parser("keys", help="this workstation's keys (recording signatures)",
                          description="The workstation signs every recording it closes with its Ed25519 key; "
                          "another workstation of the clinic trusts it once its public key is added there.")
    ksub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    pub = ksub.add_parser("public", help="print this workstation's public signing key, the line another "
                                         "workstation of the clinic adds to its trusted-workstations file")
    pub.set_defaults(func=_public)


def _open(args: argparse.Namespace, *, create: bool = False, read_only: bool = False,  # noqa: ANN202
          quiet: bool = False):
    """The clinic store in force (--store, else the settings file's, else the default); only `operators add`
    creates one (the first account of a new clinic). `read_only` for the commands that only read (nothing is
    created or repaired: ClinicStore.open). What the open found of the trail's triggers not in place is said on
    stderr (unless `quiet`: the command says it itself)."""
    from workstation.store import ClinicStore

    path = settings_from_args(args).store_target()
    if not create and isinstance(path, Path) and not path.is_file():
        from workstation.store.connection import no_store_error

        raise no_store_error(str(path))
    store = ClinicStore.open(path, training=False, read_only=read_only)
    if not quiet:
        say_trail_findings(store)
    return store


def say_trail_findings(store) -> None:  # noqa: ANN001 - a ClinicStore
    """Print on stderr what opening `store` found of the audit trail's triggers not in place (trail_repair)."""
    for sentence in store.trail_findings:
        print(f"warning: audit trail: {sentence}", file=sys.stderr)


def _passwords(args: argparse.Namespace):  # noqa: ANN202
    """A function returning the next password: from standard input (--password-stdin) or typed without echo."""
    lines = iter(sys.stdin.read().splitlines()) if args.password_stdin else None

    def ask(prompt: str) -> str:
        if lines is not None:
            try:
                return next(lines)
            except StopIteration:
                raise UserError(f"Standard input ended before the password for: {prompt.strip(': ')}.") from None
        if not sys.stdin.isatty():
            raise UserError("No terminal to type the password on; use --password-stdin.")
        return getpass.getpass(prompt)
    return ask


def _as_admin(store, args: argparse.Namespace, ask) -> str:  # noqa: ANN001
    from workstation.store import operators as ops

    if not args.admin:
        raise UserError("Sign in as an administrator to change accounts: give --admin ACCOUNT.")
    ops.sign_in(store, args.admin, ask(f"password of {args.admin}: "), "accounts")
    return args.admin


def _add(args: argparse.Namespace) -> int:
    from workstation.store import operators as ops

    ask = _passwords(args)
    with _open(args, create=True) as store:
        if not ops.operators(store):
            if args.role != "administrator":
                raise UserError("The clinic has no accounts yet: the first one must be an administrator "
                                "(--role administrator).")
            creator = f"bootstrap ({store.actor})"
        else:
            creator = _as_admin(store, args, ask)
        password = ask(f"new password for {args.account}: ")
        if not args.password_stdin and ask("the same again: ") != password:
            raise UserError("The two passwords differ; nothing was created.")
        op = ops.add(store, args.account, args.name, args.role, password, created_by=creator,
                     first=creator.startswith("bootstrap"))
    print(f"created {op.role} account {op.account} ({op.display_name})")
    return 0


def _list(args: argparse.Namespace) -> int:
    from workstation.store import operators as ops

    with _open(args, read_only=True) as store:
        accounts = ops.operators(store)
    if not accounts:
        print("no accounts yet: create the administrator with `operators add NAME --role administrator`")
    for o in accounts:
        print(f"{o.account:<16} {o.role:<14} {'active' if o.active else 'disabled':<9} {o.display_name} "
              f"(created {o.created_at} by {o.created_by})")
    return 0


def _disable(args: argparse.Namespace) -> int:
    from workstation.store import operators as ops

    with _open(args) as store:
        _as_admin(store, args, _passwords(args))
        ops.set_active(store, args.account, False, reason=args.reason)
    print(f"disabled {args.account}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from workstation.keys import trail_key
    from workstation.store import trail, trail_anchor

    with _open(args, read_only=True, quiet=True) as store:  # it reports a trigger not in place itself
        if store.trail_key_problem:
            raise UserError("The trail cannot be checked here: this workstation does not have the clinic's "
                            "audit-trail key. Copy the clinic's keys to this workstation from their backup.")
        report = trail.verify(store._conn, trail_key(), anchor=trail_anchor.seen(store))
        if report.intact and (end := trail_anchor.head(store._conn)) is not None:
            trail_anchor.note(store, *end)  # verified: this workstation has seen the trail reach here
    for note in report.repairs:  # a gap found and closed earlier: writes in it are not in the trail
        print(f"note: the trail's triggers were repaired: {note}")
    if report.intact:
        print(f"audit trail intact: {counted(report.rows, 'row')}, every link verified")
        return 0
    if not report.in_chain:  # every link holds; the tables or the triggers differ from what it records
        print(f"audit trail BROKEN: {report.problem}. Every link of its {counted(report.rows, 'row')} verifies, but the store "
              "is not what they record; report this to the clinic's administrator and keep the store as it is.")
        if "trail trigger" in report.problem or "trail function" in report.problem:
            print(f"The administrator puts a trigger back with `{command('trail repair')}` (as the store's owner); "
                  "the trail then notes the repair, and the gap stays listed here.")
    else:
        print(f"audit trail BROKEN at row {report.first_broken_id}: {report.problem}. The rows before it are intact; "
              "report this to the clinic's administrator and keep the store as it is.")
    return 1


def _repair(args: argparse.Namespace) -> int:
    with _open(args, quiet=True) as store:
        found = store.trail_findings
    for sentence in found:
        print(sentence)
    if not found:
        print("every trigger of the audit trail is in place; nothing was changed")
    return 1 if found else 0


def _show(args: argparse.Namespace) -> int:
    from workstation.store import trail

    if args.last is not None and args.last < 1:
        raise UserError(f"--last takes a number of rows from 1 up, not {args.last}.")
    from workstation.store.trail_repair import REPAIR_TABLE

    with _open(args, read_only=True) as store:
        tables = [*trail.trailed_tables(store._conn), REPAIR_TABLE]
        if args.table is not None and args.table not in tables:
            raise UserError(f"The store has no table {quoted(args.table)}; its tables: {', '.join(tables)} (the "
                            "repairs of the trail's triggers).")
        rows = trail.entries(store._conn, table=args.table)
    if args.last:
        rows = rows[-args.last:]
    for e in rows:
        reason = f" because {quoted(e.reason)}" if e.reason else ""
        row = "" if e.row_id is None else f" {e.row_id}"
        print(f"#{e.id} {e.at_utc} {e.who}: {e.action} {e.table_name}{row}{reason}")
        if e.old_json:
            print(f"    old {e.old_json}")
        if e.new_json:
            print(f"    new {e.new_json}")
    return 0


def _public(args: argparse.Namespace) -> int:
    from workstation.keys import keys_dir, public_key_text, signing_key, workstation_name
    from workstation.recording.signature import TRUSTED_FILE

    print(f"{public_key_text(signing_key())} {workstation_name()}")
    print(f"# add the line above to {TRUSTED_FILE} in the keys folder of the clinic's other workstations "
          f"(here: {keys_dir() / TRUSTED_FILE})", file=sys.stderr)
    return 0
