#!/usr/bin/env bash
# Govflow's one entry point. It prepares everything a fresh machine needs (a virtual
# environment in .venv with the pinned packages, and the buf CLI from npm for the tests),
# then hands over to the Python CLI:
#   ./govflow.sh up      run the whole stack (Temporal dev server + UI, 3 services, worker, demo data)
#   ./govflow.sh test    run the test suite (SQLite and PostgreSQL)
#   ./govflow.sh demo    submit a zero-visit application against a running stack
#   ./govflow.sh verify  verify a certificate offline
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

ensure_venv() {
  local stamp="$VENV/.govflow-installed"
  local want
  want="$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  if [[ ! -x "$VENV/bin/python" ]]; then
    echo "govflow: creating virtual environment in .venv" >&2
    "$PY" -m venv "$VENV"
  fi
  echo "govflow: installing pinned packages (first run only)" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2 || true
  "$VENV/bin/python" -m pip install -q -c requirements.lock -e ".[test]" >&2
  echo "$want" >"$stamp"
}

ensure_buf() {
  if [[ -x "$ROOT/node_modules/.bin/buf" ]]; then return; fi
  if command -v npm >/dev/null 2>&1; then
    echo "govflow: installing buf from npm (first run only)" >&2
    # npm ci installs exactly what package-lock.json pins and never rewrites it.
    npm ci --silent --no-audit --no-fund --prefix "$ROOT" >&2 || \
      echo "govflow: could not install buf; the buf lint test will report it" >&2
  fi
}

cmd="${1:-up}"
ensure_venv
case "$cmd" in
  test)
    shift || true
    ensure_buf
    export PATH="$ROOT/node_modules/.bin:$PATH"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    shift || true
    exec "$VENV/bin/python" -m govflow.cli "$cmd" "$@"
    ;;
esac
