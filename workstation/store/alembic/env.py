"""Alembic's environment for the clinic store. The store runs it programmatically (workstation.store.upgrade):
the connection, already inside the transaction that holds the store's write lock, comes in
`config.attributes["connection"]`; there is no alembic.ini and no offline (SQL script) mode."""

from __future__ import annotations

from alembic import context

from workstation.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the clinic store's migrations run from the program (workstation.store.upgrade), "
                       "which passes the connection; the alembic command line alone cannot open a store")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
