"""Autogenerates an Alembic revision for one service from its sqlmodel tables.

Usage: .venv/bin/python scripts/new_migration.py identity "message"
"""

import pathlib
import sys
import tempfile

from alembic import command
from alembic.config import Config

from govflow.db import migrate

service, message = sys.argv[1], sys.argv[2]
root = pathlib.Path(__file__).resolve().parent.parent
migrations = root / "services" / service / "migrations"
with tempfile.TemporaryDirectory() as tmp:
    url = f"sqlite:///{tmp}/x.sqlite3"
    migrate(url, migrations)  # bring a scratch database to head, then diff against models
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.set_main_option("sqlalchemy.url", url)
    command.revision(cfg, message=message, autogenerate=True)
