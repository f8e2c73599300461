"""Replicas starting together on an empty PostgreSQL database migrate one at a time."""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
import sys

import psycopg

from tests.stack import PG_ADMIN, postgres_databases

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVICES = ("identity", "certificates", "matters")
SCRIPT = """
import sys, pathlib
from govflow.db import migrate
migrate(sys.argv[1], pathlib.Path(sys.argv[2]))
"""


def test_replicas_migrate_the_same_empty_database_together() -> None:
    with postgres_databases(SERVICES) as urls:
        procs = [(service, subprocess.Popen(
            [sys.executable, "-c", SCRIPT, urls[service],
             str(ROOT / "services" / service / "migrations")],
            cwd=ROOT, stderr=subprocess.PIPE, text=True))
            for service in SERVICES for _ in range(3)]
        errors = {}
        for service, proc in procs:
            _, err = proc.communicate(timeout=180)
            if proc.returncode != 0:
                errors[service] = err[-2000:]
        assert not errors
        for service in SERVICES:
            db = urls[service].rsplit("/", 1)[1]
            with contextlib.closing(psycopg.connect(PG_ADMIN.rsplit("/", 1)[0] + "/" + db)) as c:
                assert c.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
