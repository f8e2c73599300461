"""application versions: every write that changes what GetApplication returns (the row,
its timeline, its list of children) bumps applications.version, so a replica may serve a
response it built earlier after one cheap query shows the version unchanged.

The bumps are triggers, not application code, so no write path (ORM, Core UPDATE, a
migration, an operator's SQL) can forget one. NOTE for later migrations on SQLite: a batch
operation that recreates ``applications`` or ``application_events`` drops their triggers;
such a migration must create them again (tests/integration/test_read_cache.py fails if not).

Revision ID: a3c1e07d5b21
Revises: f6113df7be42
Create Date: 2026-11-22 05:10:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = 'a3c1e07d5b21'
down_revision = 'f6113df7be42'
branch_labels = None
depends_on = None

_BUMP = "UPDATE applications SET version = version + 1 WHERE id = {ref}"

# SQLite: recursive triggers are off, and the WHEN clause stops the row's own trigger
# from firing on the bumps the others make.
SQLITE = [
    """CREATE TRIGGER applications_version_row AFTER UPDATE ON applications
       FOR EACH ROW WHEN NEW.version = OLD.version
       BEGIN UPDATE applications SET version = OLD.version + 1 WHERE id = NEW.id; END""",
    f"""CREATE TRIGGER applications_version_child_in AFTER INSERT ON applications
       FOR EACH ROW WHEN NEW.parent_id IS NOT NULL
       BEGIN {_BUMP.format(ref="NEW.parent_id")}; END""",
    f"""CREATE TRIGGER applications_version_child_out AFTER DELETE ON applications
       FOR EACH ROW WHEN OLD.parent_id IS NOT NULL
       BEGIN {_BUMP.format(ref="OLD.parent_id")}; END""",
    f"""CREATE TRIGGER applications_version_child_moved AFTER UPDATE OF parent_id ON applications
       FOR EACH ROW WHEN OLD.parent_id IS NOT NEW.parent_id
       BEGIN {_BUMP.format(ref="OLD.parent_id")}; {_BUMP.format(ref="NEW.parent_id")}; END""",
    f"""CREATE TRIGGER application_events_version_in AFTER INSERT ON application_events
       FOR EACH ROW BEGIN {_BUMP.format(ref="NEW.application_id")}; END""",
    f"""CREATE TRIGGER application_events_version_changed AFTER UPDATE ON application_events
       FOR EACH ROW BEGIN {_BUMP.format(ref="OLD.application_id")};
       {_BUMP.format(ref="NEW.application_id")}; END""",
    f"""CREATE TRIGGER application_events_version_out AFTER DELETE ON application_events
       FOR EACH ROW BEGIN {_BUMP.format(ref="OLD.application_id")}; END""",
]
SQLITE_DROP = ["applications_version_row", "applications_version_child_in",
               "applications_version_child_out", "applications_version_child_moved",
               "application_events_version_in", "application_events_version_changed",
               "application_events_version_out"]

POSTGRES = [
    """CREATE FUNCTION applications_version_row() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.version = OLD.version THEN NEW.version := OLD.version + 1; END IF;
         RETURN NEW;
       END $$""",
    f"""CREATE FUNCTION applications_version_related() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_TABLE_NAME = 'application_events' THEN
           IF TG_OP <> 'INSERT' THEN {_BUMP.format(ref="OLD.application_id")}; END IF;
           IF TG_OP <> 'DELETE' THEN {_BUMP.format(ref="NEW.application_id")}; END IF;
         ELSE  -- a child application: its parent lists it
           IF TG_OP <> 'INSERT' AND OLD.parent_id IS NOT NULL THEN
             {_BUMP.format(ref="OLD.parent_id")}; END IF;
           IF TG_OP <> 'DELETE' AND NEW.parent_id IS NOT NULL THEN
             {_BUMP.format(ref="NEW.parent_id")}; END IF;
         END IF;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER applications_version_row BEFORE UPDATE ON applications
       FOR EACH ROW EXECUTE FUNCTION applications_version_row()""",
    """CREATE TRIGGER applications_version_children
       AFTER INSERT OR DELETE OR UPDATE OF parent_id ON applications
       FOR EACH ROW EXECUTE FUNCTION applications_version_related()""",
    """CREATE TRIGGER application_events_version
       AFTER INSERT OR UPDATE OR DELETE ON application_events
       FOR EACH ROW EXECUTE FUNCTION applications_version_related()""",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS application_events_version ON application_events",
    "DROP TRIGGER IF EXISTS applications_version_children ON applications",
    "DROP TRIGGER IF EXISTS applications_version_row ON applications",
    "DROP FUNCTION IF EXISTS applications_version_related()",
    "DROP FUNCTION IF EXISTS applications_version_row()",
]


def upgrade() -> None:
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False,
                                      server_default='0'))
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
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_column('version')
