"""A session start's idempotency key (issue 17, store speed and bench accounting): `sessions.start_key`, a random
token the start carries (the course lease's holder token: workstation.session.journal.journal_start), UNIQUE. A start
whose commit went through while its client saw an error (a lost acknowledgement) and that is then sent again with the
same key finds its own row and writes nothing more (ClinicStore.add_session): never a doubled session. NULL for
sessions saved before this revision and for records entered afterwards (any number of NULLs is allowed).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sessions", sa.Column("start_key", sa.Text(), nullable=True))
    op.create_index("sessions_start_key", "sessions", ["start_key"], unique=True)


def downgrade() -> None:
    raise NotImplementedError("a clinic store is never downgraded: restore its backup instead")
