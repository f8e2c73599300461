"""delegations, their uses (the grantor's access records) and identity's audit chain

Revision ID: 9d3f6a1c2b85
Revises: 5e1c2a9b7d40
Create Date: 2026-12-07 07:50:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '9d3f6a1c2b85'
down_revision = '5e1c2a9b7d40'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('delegations',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('grantor', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('delegate', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('matters', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('purposes', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('expire_time', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('create_time', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('revoke_time', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('granted_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id')
    )
    with op.batch_alter_table('delegations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delegations_grantor'), ['grantor'], unique=False)
        batch_op.create_index(batch_op.f('ix_delegations_delegate'), ['delegate'], unique=False)
    op.create_table('delegation_uses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delegation_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('grantor', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('partner', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('matter', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('time', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('delegation_uses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delegation_uses_delegation_id'), ['delegation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_delegation_uses_grantor'), ['grantor'], unique=False)
    op.create_table('identity_audit_heads',
    sa.Column('chain', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('chain')
    )
    op.create_table('identity_audit_log',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('time', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('entry_json', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('prev_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('identity_audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_audit_log_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_identity_audit_log_subject'), ['subject'], unique=False)
    # The chain's head starts at the genesis hash; every append updates this row first.
    heads = sa.table("identity_audit_heads", sa.column("chain", sa.String),
                     sa.column("seq", sa.Integer), sa.column("hash", sa.String))
    op.bulk_insert(heads, [{"chain": "identity", "seq": 0, "hash": "0" * 64}])


def downgrade() -> None:
    with op.batch_alter_table('identity_audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_audit_log_subject'))
        batch_op.drop_index(batch_op.f('ix_identity_audit_log_action'))
    op.drop_table('identity_audit_log')
    op.drop_table('identity_audit_heads')
    with op.batch_alter_table('delegation_uses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delegation_uses_grantor'))
        batch_op.drop_index(batch_op.f('ix_delegation_uses_delegation_id'))
    op.drop_table('delegation_uses')
    with op.batch_alter_table('delegations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delegations_delegate'))
        batch_op.drop_index(batch_op.f('ix_delegations_grantor'))
    op.drop_table('delegations')
