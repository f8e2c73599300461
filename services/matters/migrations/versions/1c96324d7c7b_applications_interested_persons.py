"""applications: interested persons

Revision ID: 1c96324d7c7b
Revises: 81865cc521b3
Create Date: 2026-12-07 04:47:14.886221
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '1c96324d7c7b'
down_revision = '81865cc521b3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN: a batch copy would drop the table's version triggers.
    op.add_column('applications', sa.Column('interested', sqlmodel.sql.sqltypes.AutoString(), server_default='', nullable=False))


def downgrade() -> None:
    op.drop_column('applications', 'interested')
