"""Recordings for the whole clinic (issue 17; workstation/recording/share.py). Each recording is copied by the
workstation that holds it (`copy_from`, its host name) to the clinic's recordings share; once the copy there is
verified (checksum and signature) the index keeps where (`shared_path`, absolute) and when (`shared_at`, UTC).
NULL: not copied yet. Was legacy migration 10 on the branch that made it; no store outside that branch had it.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('recordings', sa.Column('copy_from', sa.Text(), nullable=True))
    op.add_column('recordings', sa.Column('shared_path', sa.Text(), nullable=True))
    op.add_column('recordings', sa.Column('shared_at', sa.Text(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("a clinic store is never downgraded: restore its backup instead")
