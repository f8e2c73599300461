from govflow.db import run_env
from services.certificates.store import metadata

run_env(metadata)
