"""partner keys and used client assertions (private_key_jwt)

Revision ID: 5e1c2a9b7d40
Revises: 7b88d0d6d48a
Create Date: 2026-12-07 06:05:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '5e1c2a9b7d40'
down_revision = '7b88d0d6d48a'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('partner_keys',
    sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kid', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('public_jwk', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('create_time', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('client_id', 'kid')
    )
    op.create_table('used_client_assertions',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('expire_time', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('used_client_assertions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_used_client_assertions_expire_time'), ['expire_time'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('used_client_assertions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_used_client_assertions_expire_time'))
    op.drop_table('used_client_assertions')
    op.drop_table('partner_keys')
