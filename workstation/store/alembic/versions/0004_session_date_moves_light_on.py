"""A session's date change moves its light rows' `light_on` with it (issue 17, from its fresh tester): the light-date
guard of 0002 checked a light row against its session's date only when the row was written, so changing
`sessions.session_date` afterwards (around the program, in one transaction) could put two light sessions on one area on
one day. Now the session's light rows follow its date, and the unique index (area_id, light_on) refuses the clash.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = (
    """CREATE TRIGGER sessions_date_moves_light_on AFTER UPDATE OF session_date ON sessions
    WHEN NEW.session_date IS NOT OLD.session_date
    BEGIN UPDATE treatments SET light_on = NEW.session_date WHERE session_id = NEW.id AND modality = 'light'; END""",
)
POSTGRESQL_TRIGGERS = (
    """CREATE FUNCTION sessions_date_moves_light_on() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE treatments SET light_on = NEW.session_date WHERE session_id = NEW.id AND modality = 'light';
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER sessions_date_moves_light_on AFTER UPDATE OF session_date ON sessions
        FOR EACH ROW WHEN (NEW.session_date IS DISTINCT FROM OLD.session_date)
        EXECUTE FUNCTION sessions_date_moves_light_on()""",
)


def upgrade() -> None:
    for statement in SQLITE_TRIGGERS if op.get_bind().dialect.name == "sqlite" else POSTGRESQL_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("a clinic store is never downgraded: restore its backup instead")
