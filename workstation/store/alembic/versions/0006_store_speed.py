"""Indexes for the store's reads by course and by patient (issue 17, store speed): a visit's plan reads a course's
sessions (and through them their treatments and responses), the patient's courses, areas, screening answers and MEDs;
opening a store reads the trail's last record of one row. Without these indexes each of those reads scanned its whole
table (SQLite `EXPLAIN QUERY PLAN`: SCAN sessions, SCAN treatments, SCAN audit_trail ...), a cost that grows with the
clinic's history. No constraint and no data change: every guarantee is as before.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEXES = (
    ("sessions_by_course", "sessions", ("course_id", "session_date")),
    ("courses_by_patient", "courses", ("patient_id",)),
    ("areas_by_patient", "areas", ("patient_id",)),
    ("screening_answers_by_patient", "screening_answers", ("patient_id",)),
    ("med_measurements_by_patient", "med_measurements", ("patient_id",)),
    ("audit_trail_by_row", "audit_trail", ("table_name", "row_id")),
)
"""(index, table, columns): the same as workstation/store/schema.py."""


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, list(columns))


def downgrade() -> None:
    raise NotImplementedError("a clinic store is never downgraded: restore its backup instead")
