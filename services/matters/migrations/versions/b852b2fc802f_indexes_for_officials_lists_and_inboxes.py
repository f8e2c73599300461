"""indexes for officials' lists and inboxes: a page of a filtered list comes off an
index in order instead of sorting every match (govflow bench, figure 6)

Revision ID: b852b2fc802f
Revises: c5d92985ad44
Create Date: 2026-11-22 02:24:14.197852
"""
from alembic import op

revision = 'b852b2fc802f'
down_revision = 'c5d92985ad44'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.create_index('ix_applications_agency_created', ['agency', 'create_time'], unique=False)
        batch_op.create_index('ix_applications_agency_matter_status_created', ['agency', 'matter_code', 'status', 'create_time'], unique=False)

    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index('ix_tasks_agency_role_status_due', ['agency', 'role', 'status', 'due_time', 'name'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_agency_role_status_due')

    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_index('ix_applications_agency_matter_status_created')
        batch_op.drop_index('ix_applications_agency_created')
