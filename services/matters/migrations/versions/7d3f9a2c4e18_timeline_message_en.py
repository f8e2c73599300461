"""application_events: the English message beside the (Chinese) message

Revision ID: 7d3f9a2c4e18
Revises: 4b7d2e9f1a63
Create Date: 2026-12-07 08:40:00.000000
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '7d3f9a2c4e18'
down_revision = '4b7d2e9f1a63'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN: a batch copy would drop the table's version triggers. Events
    # recorded before keep "" here (their message is the English one).
    op.add_column('application_events', sa.Column('message_en', sqlmodel.sql.sqltypes.AutoString(), server_default='', nullable=False))


def downgrade() -> None:
    op.drop_column('application_events', 'message_en')
