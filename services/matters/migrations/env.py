from govflow.db import run_env
from services.matters.store import metadata

run_env(metadata)
