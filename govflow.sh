#!/usr/bin/env bash
# Govflow's one entry point. It prepares everything a fresh machine needs (a virtual
# environment in .venv with the pinned packages; the npm workspace, with buf and the
# TypeScript client's tools, for the tests),
# then hands over to the Python CLI:
#   ./govflow.sh up      run the whole stack (Temporal dev server + UI, 3 services, worker, demo data)
#   ./govflow.sh test    run the test suite (SQLite and PostgreSQL)
#   ./govflow.sh demo    submit a zero-visit application against a running stack
#   ./govflow.sh verify  verify a certificate offline
#   ./govflow.sh gen-clients  regenerate the TypeScript client (clients/ts) from protos/
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

ensure_npm() {
  # npm ci at the root installs exactly what package-lock.json pins and never rewrites it:
  # buf (proto lint) and the clients/ts workspace (protoc-gen-es, the Connect client, esbuild,
  # playwright-core, typescript). It runs again whenever the lock file changes.
  local stamp="$ROOT/node_modules/.govflow-installed"
  local want
  want="$(sha256sum package-lock.json | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return; fi
  if command -v npm >/dev/null 2>&1; then
    echo "govflow: installing the npm workspace: buf, the TypeScript client's tools (first run only)" >&2
    if npm ci --silent --no-audit --no-fund --prefix "$ROOT" >&2; then
      echo "$want" >"$stamp"
    else
      echo "govflow: npm ci failed; the tests that need buf or node will report it" >&2
    fi
  fi
}

ensure_chromium() {
  # The browser test drives Debian's chromium: Playwright's own browser builds cannot be
  # downloaded here. Installed from apt when missing and we are root (CI is); otherwise the
  # browser test fails and says how to install it.
  if [[ -x /usr/bin/chromium ]]; then return; fi
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "govflow: installing chromium from apt for the browser test (first run only)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
      >/dev/null || echo "govflow: could not install chromium; the browser test will report it" >&2
  fi
}

ensure_prometheus() {
  # tests/e2e/test_metrics_prometheus.py runs Debian's prometheus against a running stack.
  # Installed from apt when missing and we are root (CI is); otherwise that test fails and
  # says how to install it.
  if command -v prometheus >/dev/null 2>&1; then return; fi
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "govflow: installing prometheus from apt for the metrics test (first run only)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; } \
      >/dev/null || echo "govflow: could not install prometheus; its test will report it" >&2
  fi
}

cmd="${1:-up}"
ensure_venv
case "$cmd" in
  test)
    shift || true
    ensure_npm
    ensure_chromium
    ensure_prometheus
    export PATH="$ROOT/node_modules/.bin:$PATH"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  gen-clients)
    ensure_npm
    exec "$VENV/bin/python" -m govflow.cli "$@"
    ;;
  *)
    shift || true
    exec "$VENV/bin/python" -m govflow.cli "$cmd" "$@"
    ;;
esac
