"""per-caller rate limits

Revision ID: f6113df7be42
Revises: b852b2fc802f
Create Date: 2026-11-22 02:24:19.131035
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'f6113df7be42'
down_revision = 'b852b2fc802f'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('submission_rate_limits',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('window_start', sa.BigInteger(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', 'window_start')
    )
    with op.batch_alter_table('submission_rate_limits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submission_rate_limits_window_start'), ['window_start'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('submission_rate_limits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submission_rate_limits_window_start'))

    op.drop_table('submission_rate_limits')
