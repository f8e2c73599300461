"""applications: the delegation a partner submitted under

Revision ID: 4b7d2e9f1a63
Revises: 1c96324d7c7b
Create Date: 2026-12-07 07:30:00.000000
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '4b7d2e9f1a63'
down_revision = '1c96324d7c7b'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN: a batch copy would drop the table's version triggers.
    op.add_column('applications', sa.Column('delegation', sqlmodel.sql.sqltypes.AutoString(), server_default='', nullable=False))


def downgrade() -> None:
    op.drop_column('applications', 'delegation')
