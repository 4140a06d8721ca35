"""`store setup-roles --url URL` (the owner / application roles of a PostgreSQL store) and `store migrate --to URL`
(a single-room SQLite store copied into an empty PostgreSQL database). docs/deployment.md."""

from __future__ import annotations

import argparse

from workstation.cli_settings import add_setting_options, settings_from_args


def register(ssub: argparse._SubParsersAction) -> None:
    """Add the two commands under `store`."""
    roles = ssub.add_parser(
        "setup-roles", help="give a PostgreSQL store its owner and application roles",
        description="Create (if missing) the roles cicatrix_owner, which owns the store's schema and audit-trail "
        "functions, and cicatrix_app, which the workstations use: it may read and write the clinical tables and "
        "only add to the audit trail. Run once by the server's superuser; creates the store's schema first if the "
        "database is empty. Set the roles' passwords afterwards with ALTER ROLE.")
    roles.add_argument("--url", required=True, metavar="URL",
                       help="the store's database, as an account that may create roles: postgresql+psycopg://…")
    roles.add_argument("--training", action="store_true", help="the database is a training store")
    roles.set_defaults(func=_setup_roles)

    move = ssub.add_parser(
        "migrate", help="copy this SQLite store into an empty PostgreSQL database",
        description="Copy the clinic's single-room SQLite store (--store, or the settings') into an EMPTY PostgreSQL "
        "database: every row with its id and the audit trail as it is. The trail's chain is verified before and "
        "after, and every table's rows are compared. The SQLite store is only read. Run as the database's owner "
        "or superuser, then `store setup-roles`.")
    move.add_argument("--to", required=True, metavar="URL", help="the empty database: postgresql+psycopg://…")
    add_setting_options(move, ("paths.store",))
    move.set_defaults(func=_migrate)


def _setup_roles(args: argparse.Namespace) -> int:
    from workstation.errors import UserError
    from workstation.store import ClinicStore
    from workstation.store.connection import store_url
    from workstation.store.roles import apply_roles

    if store_url(args.url).get_backend_name() != "postgresql":
        raise UserError("store setup-roles is for a PostgreSQL store (postgresql+psycopg://…); an SQLite store is "
                        "a file protected by its folder's permissions.")
    with ClinicStore.open(args.url, training=args.training) as store:  # schema and triggers at the head first
        for line in apply_roles(store._conn):
            print(line)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from workstation.errors import UserError
    from workstation.store.move import migrate_to_server

    source = settings_from_args(args).store_target()
    if not isinstance(source, Path):
        raise UserError("store migrate copies an SQLite store: give its file with --store (the store in force is "
                        "already on a server).")
    if not source.is_file():
        from workstation.store.connection import no_store_error

        raise no_store_error(str(source))
    for line in migrate_to_server(source, args.to):
        print(line)
    return 0
