"""agencies' English names: display_name_en beside display_name (the Chinese, primary
name); existing agencies get "" (no English name) until they are created again.

Revision ID: 3a8c1e5f7b20
Revises: 9d3f6a1c2b85
Create Date: 2026-12-07 08:55:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '3a8c1e5f7b20'
down_revision = '9d3f6a1c2b85'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agencies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('display_name_en', sqlmodel.sql.sqltypes.AutoString(), nullable=False,
                                      server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('agencies', schema=None) as batch_op:
        batch_op.drop_column('display_name_en')
