"""Each workstation's own recordings folder (issue 17, from its fresh tester): the recordings root was one value for
the whole store (`meta.recordings_root`), so `store set-recordings-root` run in one room re-pointed every room's
recordings on a shared PostgreSQL store. Now each workstation's local folder is its own row of `recordings_roots`
(keyed by the workstation's host name, as `recordings.copy_from`), and each recording indexed relative to a root
names whose root in `recordings.held_by`.

Existing stores lose nothing: `meta.recordings_root` stays, untouched, as the root of the recordings indexed before
this revision (`held_by` NULL); a workstation takes over such a recording (sets `held_by` to itself) only when the
file is found under its own folder (workstation/store/recording_index.py).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recordings_roots",
        sa.Column("workstation", sa.Text(), sa.CheckConstraint("length(workstation) > 0"), primary_key=True),
        sa.Column("root", sa.Text(), sa.CheckConstraint("length(root) > 0"), nullable=False),
        sa.Column("set_at", sa.Text(), nullable=False))
    op.add_column("recordings", sa.Column("held_by", sa.Text(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("a clinic store is never downgraded: restore its backup instead")
