"""calendar years, provisional due times, outcome reasons

Revision ID: 81865cc521b3
Revises: d41b7e2c9a60
Create Date: 2026-12-07 04:27:21.912989
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '81865cc521b3'
down_revision = 'd41b7e2c9a60'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('calendar_years',
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('holidays_json', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('working_days_json', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('published_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('publish_time', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('region', 'year')
    )
    # Plain ADD COLUMN (no batch copy): the tables carry version triggers (a3c1e07d5b21,
    # d41b7e2c9a60) that a copy would drop.
    op.add_column('applications', sa.Column('due_provisional', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('applications', sa.Column('reasons', sqlmodel.sql.sqltypes.AutoString(), server_default='', nullable=False))
    op.add_column('tasks', sa.Column('due_provisional', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    op.drop_column('tasks', 'due_provisional')
    op.drop_column('applications', 'reasons')
    op.drop_column('applications', 'due_provisional')

    op.drop_table('calendar_years')
