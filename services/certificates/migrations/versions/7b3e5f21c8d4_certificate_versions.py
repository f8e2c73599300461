"""certificate versions: every write to a certificate's row gives it a new
certificates.version, so VerifyCertificate may answer with the verification it made before
after one small query shows the certificate's version (and its key) unchanged.

Triggers, not application code, so no write path (ORM, Core UPDATE, a migration, an
operator's or an intruder's SQL) goes unseen: a tampered row gets a new version and is
verified again, and fails. An inserted row starts at a random version, so a row deleted and
written again under the same id is never taken for the one verified before. The key a
certificate names is compared by its agency and public key in the same query, so issuer
keys need no version. NOTE for later migrations on SQLite: a batch operation that recreates
``certificates`` drops these triggers; it must create them again
(tests/integration/test_certificates_service.py fails if not).

Revision ID: 7b3e5f21c8d4
Revises: 902b44a917ec
Create Date: 2026-12-02 01:20:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '7b3e5f21c8d4'
down_revision = '902b44a917ec'
branch_labels = None
depends_on = None

# SQLite: recursive triggers are off, and the WHEN clauses stop each trigger from firing
# again on the other's update.
SQLITE = [
    """CREATE TRIGGER certificates_version_new AFTER INSERT ON certificates
       FOR EACH ROW
       BEGIN UPDATE certificates SET version = abs(random() % 4611686018427387904)
             WHERE id = NEW.id; END""",
    """CREATE TRIGGER certificates_version_row AFTER UPDATE ON certificates
       FOR EACH ROW WHEN NEW.version = OLD.version
       BEGIN UPDATE certificates SET version = OLD.version + 1 WHERE id = NEW.id; END""",
]
SQLITE_DROP = ["certificates_version_new", "certificates_version_row"]

POSTGRES = [
    """CREATE FUNCTION certificates_version() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'INSERT' THEN
           NEW.version := floor(random() * 4611686018427387904)::bigint;
         ELSIF NEW.version = OLD.version THEN
           NEW.version := OLD.version + 1;
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER certificates_version BEFORE INSERT OR UPDATE ON certificates
       FOR EACH ROW EXECUTE FUNCTION certificates_version()""",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS certificates_version ON certificates",
    "DROP FUNCTION IF EXISTS certificates_version()",
]


def upgrade() -> None:
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.BigInteger(), nullable=False,
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
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.drop_column('version')
