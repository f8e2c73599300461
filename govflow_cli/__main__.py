"""``python -m govflow_cli CMD ...``: what ``./govflow.sh`` runs (see govflow_cli/cli.py)."""

from govflow_cli.cli import main

main()
