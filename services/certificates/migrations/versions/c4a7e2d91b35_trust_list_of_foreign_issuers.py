"""trust list of foreign issuers (issue 27): trusted_issuers, the list's version
(trust_list_head) and the issuers' own published status lists (issuer_status_lists).
Imported foreign certificates live in ``certificates`` (issuer ``issuers/{id}``), so that
table is untouched and keeps its version triggers.

Revision ID: c4a7e2d91b35
Revises: debd62a80f1b
Create Date: 2026-12-07 08:10:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = 'c4a7e2d91b35'
down_revision = 'debd62a80f1b'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('trusted_issuers',
    sa.Column('issuer', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('display_name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('jurisdiction', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('jwks_json', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status_list_location', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('certificate_types_json', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('not_after', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('added_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('add_time', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('issuer')
    )
    op.create_table('trust_list_head',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('update_time', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('issuer_status_lists',
    sa.Column('issuer', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('signed_payload', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('signature', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kid', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('issued_time', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('publish_time', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('published_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('issuer')
    )


def downgrade() -> None:
    op.drop_table('issuer_status_lists')
    op.drop_table('trust_list_head')
    op.drop_table('trusted_issuers')
