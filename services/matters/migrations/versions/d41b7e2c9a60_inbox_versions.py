"""inbox versions: every write to a task bumps its agency's row in inbox_versions, so a
replica may serve an inbox page it built earlier after one cheap query shows the agency's
version unchanged (services/matters/reads.py, list_tasks).

Triggers, as for applications.version (a3c1e07d5b21), so no write path can forget one.
NOTE for later migrations on SQLite: a batch operation that recreates ``tasks`` drops
these triggers; such a migration must create them again (tests/integration/
test_read_cache.py fails if not).

Revision ID: d41b7e2c9a60
Revises: a3c1e07d5b21
Create Date: 2026-12-01 23:45:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = 'd41b7e2c9a60'
down_revision = 'a3c1e07d5b21'
branch_labels = None
depends_on = None


def _bump(ref: str) -> str:
    return (f"INSERT OR IGNORE INTO inbox_versions (agency, version) VALUES ({ref}, 0); "
            f"UPDATE inbox_versions SET version = version + 1 WHERE agency = {ref};")


SQLITE = [
    f"""CREATE TRIGGER tasks_inbox_version_in AFTER INSERT ON tasks
       FOR EACH ROW BEGIN {_bump("NEW.agency")} END""",
    f"""CREATE TRIGGER tasks_inbox_version_changed AFTER UPDATE ON tasks
       FOR EACH ROW BEGIN {_bump("OLD.agency")} {_bump("NEW.agency")} END""",
    f"""CREATE TRIGGER tasks_inbox_version_out AFTER DELETE ON tasks
       FOR EACH ROW BEGIN {_bump("OLD.agency")} END""",
]
SQLITE_DROP = ["tasks_inbox_version_in", "tasks_inbox_version_changed",
               "tasks_inbox_version_out"]

_PG_BUMP = ("INSERT INTO inbox_versions (agency, version) VALUES ({ref}, 1) "
            "ON CONFLICT (agency) DO UPDATE SET version = inbox_versions.version + 1")
POSTGRES = [
    f"""CREATE FUNCTION tasks_inbox_version() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP <> 'INSERT' THEN {_PG_BUMP.format(ref="OLD.agency")}; END IF;
         IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.agency IS DISTINCT FROM OLD.agency)
         THEN {_PG_BUMP.format(ref="NEW.agency")}; END IF;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER tasks_inbox_version AFTER INSERT OR UPDATE OR DELETE ON tasks
       FOR EACH ROW EXECUTE FUNCTION tasks_inbox_version()""",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS tasks_inbox_version ON tasks",
    "DROP FUNCTION IF EXISTS tasks_inbox_version()",
]


def upgrade() -> None:
    op.create_table(
        'inbox_versions',
        sa.Column('agency', sa.String(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('agency'),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES if postgres else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_DROP:
            op.execute(statement)
    else:
        for name in SQLITE_DROP:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table('inbox_versions')
