"""The schema the legacy migrations reached (user_version 8): patients under pseudonyms with identity apart,
screening, MEDs, areas and their corrections, courses, sessions (the journal), treatments, responses, plan
overrides, recordings, operators, the audit trail, devices and their radiometer checks and calibration overrides.

A store made by the legacy path (workstation/store/migrations.py) is stamped at this revision; a new store is
created by it. Frozen: never edit it, add the next revision (docs/records.md, "Changing the schema").

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_trail',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at_utc', sa.Text(), nullable=False),
    sa.Column('who', sa.Text(), nullable=False),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('table_name', sa.Text(), nullable=False),
    sa.Column('row_id', sa.Integer(), nullable=True),
    sa.Column('old_json', sa.Text(), nullable=True),
    sa.Column('new_json', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), server_default=sa.text("''"), nullable=False),
    sa.Column('prev_hash', sa.Text(), nullable=False),
    sa.Column('hash', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.CheckConstraint("action IN ('create', 'change', 'delete')"),
    sa.CheckConstraint('length(prev_hash) = 64'),
    sa.CheckConstraint('length(hash) = 64')
    )
    op.create_table('devices',
    sa.Column('serial_number', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('model', sa.Text(), nullable=False),
    sa.Column('lamp_hours', sa.Double(), nullable=True),
    sa.Column('reported_factor', sa.Double(), nullable=True),
    sa.Column('first_seen', sa.Text(), nullable=False),
    sa.Column('last_seen', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('serial_number')
    )
    op.create_table('meta',
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('operators',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account', sa.Text(), nullable=False),
    sa.Column('display_name', sa.Text(), nullable=False),
    sa.Column('role', sa.Text(), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('active', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('created_at', sa.Text(), nullable=False),
    sa.Column('created_by', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account'),
    sa.CheckConstraint("role IN ('clinician', 'trainer', 'engineer', 'administrator')"),
    sa.CheckConstraint('active IN (0, 1)')
    )
    op.create_table('patients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pseudonym', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('pseudonym')
    )
    op.create_table('areas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('label', sa.Text(), nullable=False),
    sa.Column('body_region', sa.Text(), nullable=False),
    sa.Column('lesion_type', sa.Text(), nullable=False),
    sa.Column('size_cm2', sa.Double(), nullable=False),
    sa.Column('skin_type', sa.Text(), nullable=False),
    sa.Column('scar_age_months', sa.Integer(), nullable=True),
    sa.Column('scar_kind', sa.Text(), nullable=True),
    sa.Column('closed_on', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.CheckConstraint('size_cm2 > 0'),
    sa.CheckConstraint('scar_age_months IS NULL OR scar_age_months >= 0')
    )
    op.create_index('areas_open_label', 'areas', ['patient_id', 'label'], unique=True, sqlite_where=sa.text('closed_on IS NULL'), postgresql_where=sa.text('closed_on IS NULL'))
    op.create_table('calibration_overrides',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('serial_number', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('who', sa.Text(), nullable=False),
    sa.Column('on_date', sa.Text(), nullable=False),
    sa.Column('at', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['serial_number'], ['devices.serial_number'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.CheckConstraint('length(reason) > 0'),
    sa.CheckConstraint('length(who) > 0')
    )
    op.create_table('courses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('protocol_id', sa.Text(), nullable=False),
    sa.Column('protocol_version', sa.Integer(), nullable=False),
    sa.Column('planned_sessions', sa.Integer(), nullable=False),
    sa.Column('interval_days', sa.Integer(), nullable=False),
    sa.Column('started_on', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('med_measurements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('device_model', sa.Text(), nullable=False),
    sa.Column('med_mj_cm2', sa.Double(), nullable=False),
    sa.Column('measured_on', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.CheckConstraint('med_mj_cm2 > 0')
    )
    op.create_table('patient_identity',
    sa.Column('patient_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('family_name', sa.Text(), nullable=False),
    sa.Column('given_name', sa.Text(), nullable=False),
    sa.Column('birth_date', sa.Text(), nullable=True),
    sa.Column('contact', sa.Text(), server_default=sa.text("''"), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('patient_id')
    )
    op.create_table('radiometer_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('serial_number', sa.Text(), nullable=False),
    sa.Column('checked_on', sa.Text(), nullable=False),
    sa.Column('reference_meter', sa.Text(), nullable=False),
    sa.Column('measured_mw_cm2', sa.Double(), nullable=False),
    sa.Column('reported_mw_cm2', sa.Double(), nullable=False),
    sa.Column('factor', sa.Double(), nullable=False),
    sa.Column('who', sa.Text(), nullable=False),
    sa.Column('at', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['serial_number'], ['devices.serial_number'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.CheckConstraint('length(reference_meter) > 0'),
    sa.CheckConstraint('measured_mw_cm2 > 0'),
    sa.CheckConstraint('reported_mw_cm2 > 0'),
    sa.CheckConstraint('factor > 0'),
    sa.CheckConstraint('length(who) > 0')
    )
    op.create_table('screening_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Text(), nullable=False),
    sa.Column('answer', sa.Integer(), nullable=False),
    sa.Column('answered_on', sa.Text(), nullable=False),
    sa.Column('answered_by', sa.Text(), nullable=False),
    sa.Column('notes', sa.Text(), server_default=sa.text("''"), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.CheckConstraint('answer IN (0, 1)')
    )
    op.create_table('area_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('field', sa.Text(), nullable=False),
    sa.Column('old', sa.Text(), nullable=False),
    sa.Column('new', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('who', sa.Text(), nullable=False),
    sa.Column('at', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['areas.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.CheckConstraint('length(reason) > 0')
    )
    op.create_table('course_areas',
    sa.Column('course_id', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['areas.id'], ),
    sa.ForeignKeyConstraint(['course_id'], ['courses.id'], ),
    sa.PrimaryKeyConstraint('course_id', 'area_id')
    )
    op.create_table('sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('course_id', sa.Integer(), nullable=False),
    sa.Column('session_date', sa.Text(), nullable=False),
    sa.Column('plan_json', sa.Text(), nullable=True),
    sa.Column('device_model', sa.Text(), nullable=True),
    sa.Column('state', sa.Text(), server_default=sa.text("'ended'"), nullable=False),
    sa.Column('process', sa.Text(), nullable=True),
    sa.Column('started_at', sa.Text(), nullable=True),
    sa.Column('ended_at', sa.Text(), nullable=True),
    sa.Column('recording_path', sa.Text(), nullable=True),
    sa.Column('outcome_note', sa.Text(), server_default=sa.text("''"), nullable=False),
    sa.ForeignKeyConstraint(['course_id'], ['courses.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.CheckConstraint("state IN ('ended', 'in_progress', 'completed', 'partial', 'aborted', 'crashed')")
    )
    op.create_table('plan_overrides',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('field', sa.Text(), nullable=False),
    sa.Column('proposed', sa.Double(), nullable=True),
    sa.Column('value', sa.Double(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('who', sa.Text(), nullable=False),
    sa.Column('at', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['areas.id'], ),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.CheckConstraint('length(reason) > 0')
    )
    op.create_table('recordings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('sha256', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('session_id'),
    sa.CheckConstraint('length(sha256) = 64')
    )
    op.create_table('responses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('erythema_grade', sa.Integer(), nullable=True),
    sa.Column('blistering', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('pain_0_10', sa.Integer(), nullable=True),
    sa.Column('repigmentation_band', sa.Text(), nullable=True),
    sa.Column('notes', sa.Text(), server_default=sa.text("''"), nullable=False),
    sa.Column('erythema_duration_h', sa.Double(), nullable=True),
    sa.Column('swelling', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('itching', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('healed_on', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['area_id'], ['areas.id'], ),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('session_id', 'area_id'),
    sa.CheckConstraint('erythema_grade BETWEEN 0 AND 4'),
    sa.CheckConstraint('pain_0_10 BETWEEN 0 AND 10')
    )
    op.create_table('treatments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('modality', sa.Text(), nullable=False),
    sa.Column('dose_mj_cm2', sa.Double(), nullable=True),
    sa.Column('depth_mm', sa.Double(), nullable=True),
    sa.Column('stroke_rate_hz', sa.Double(), nullable=True),
    sa.Column('passes', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['area_id'], ['areas.id'], ),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('session_id', 'area_id', 'modality'),
    sa.CheckConstraint("modality IN ('light', 'needling')")
    )


def downgrade() -> None:
    raise NotImplementedError("a clinic store is never downgraded: restore its backup instead")
