"""Rooms that cannot collide (issue 17; workstation/store/leases.py, docs/records.md "Rooms that cannot collide").

- `course_leases`: one row per course (UNIQUE course_id), the start that holds it (holder token, room, host, account,
  process) and its times (started, renewed, released; ISO-8601 UTC text).
- `courses.version`: bumped by each saved session start, checked against the version a plan was computed from.
- `sessions.room`: the room whose lease the session started under.
- `treatments.light_on`: a light row's session date (NULL for needling), with UNIQUE (area_id, light_on): one light
  session per area per day, whatever the program does; triggers refuse a light row whose `light_on` is not its
  session's date (SQLite triggers, or a PL/pgSQL trigger function on PostgreSQL), so NULL cannot dodge the index.
  Light rows from before get their session's date, except a second light session on the same area and day recorded
  earlier: it keeps NULL (kept as it was, outside the rule).

The SQL is written out here, not imported: a released revision never changes (docs/records.md, "The schema and its
changes"). Was legacy migration 9 on the branch that made it; no store outside that branch had it.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LIGHT_ON_OF_OLD_ROWS = """
    UPDATE treatments SET light_on = (SELECT s.session_date FROM sessions s WHERE s.id = treatments.session_id)
        WHERE modality = 'light' AND NOT EXISTS (
            SELECT 1 FROM treatments t2 JOIN sessions s2 ON s2.id = t2.session_id
            JOIN sessions s1 ON s1.id = treatments.session_id
            WHERE t2.modality = 'light' AND t2.area_id = treatments.area_id AND s2.session_date = s1.session_date
            AND t2.id < treatments.id)
"""

SQLITE_TRIGGERS = (
    """CREATE TRIGGER treatments_light_on_insert BEFORE INSERT ON treatments
    WHEN NEW.modality = 'light' AND NEW.light_on IS NOT (SELECT session_date FROM sessions WHERE id = NEW.session_id)
    BEGIN SELECT RAISE(ABORT, 'a light treatment carries its session date in light_on'); END""",
    """CREATE TRIGGER treatments_light_on_update BEFORE UPDATE OF modality, light_on, session_id ON treatments
    WHEN NEW.modality = 'light' AND NEW.light_on IS NOT (SELECT session_date FROM sessions WHERE id = NEW.session_id)
    BEGIN SELECT RAISE(ABORT, 'a light treatment carries its session date in light_on'); END""",
)

POSTGRESQL_TRIGGERS = (
    """CREATE FUNCTION treatments_light_on_check() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.modality = 'light' AND NEW.light_on IS DISTINCT FROM
                (SELECT session_date FROM sessions WHERE id = NEW.session_id) THEN
            RAISE EXCEPTION 'a light treatment carries its session date in light_on' USING ERRCODE = '23514';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER treatments_light_on_insert BEFORE INSERT ON treatments
        FOR EACH ROW EXECUTE FUNCTION treatments_light_on_check()""",
    """CREATE TRIGGER treatments_light_on_update BEFORE UPDATE OF modality, light_on, session_id ON treatments
        FOR EACH ROW EXECUTE FUNCTION treatments_light_on_check()""",
)


def upgrade() -> None:
    op.create_table('course_leases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('course_id', sa.Integer(), nullable=False),
    sa.Column('holder', sa.Text(), nullable=False),
    sa.Column('room', sa.Text(), nullable=False),
    sa.Column('host', sa.Text(), nullable=False),
    sa.Column('account', sa.Text(), nullable=False),
    sa.Column('process', sa.Text(), nullable=False),
    sa.Column('started_at', sa.Text(), nullable=False),
    sa.Column('renewed_at', sa.Text(), nullable=False),
    sa.Column('released_at', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['course_id'], ['courses.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('course_id'),
    sa.CheckConstraint('length(room) > 0')
    )
    op.add_column('courses', sa.Column('version', sa.Integer(), server_default=sa.text('0'), nullable=False))
    op.add_column('sessions', sa.Column('room', sa.Text(), nullable=True))
    op.add_column('treatments', sa.Column('light_on', sa.Text(),
                                          sa.CheckConstraint("light_on IS NULL OR modality = 'light'"),
                                          nullable=True))
    op.execute(LIGHT_ON_OF_OLD_ROWS)
    op.create_index('treatments_one_light_session_per_area_day', 'treatments', ['area_id', 'light_on'], unique=True)
    for statement in SQLITE_TRIGGERS if op.get_bind().dialect.name == "sqlite" else POSTGRESQL_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("a clinic store is never downgraded: restore its backup instead")
