#!/usr/bin/env bash
# Govflow's one entry point. It prepares everything a fresh machine needs (a virtual
# environment in .venv with the pinned packages; the npm workspace, with buf, the
# TypeScript client's tools and the web console's, for `up` and the tests),
# then hands over to the Python CLI:
#   ./govflow.sh up      run the whole stack (Temporal dev server + UI, 3 services, worker, demo data)
#   ./govflow.sh test    run the test suite (SQLite and PostgreSQL)
#   ./govflow.sh demo    submit a zero-visit application against a running stack
#   ./govflow.sh verify  verify a certificate offline
#   ./govflow.sh gen-clients  regenerate the TypeScript client (clients/ts) from protos/
#   ./govflow.sh dev-ca [DIR] a development CA and certificates for TLS in docker-compose.yml
# `up` and `test` also build the web console (console/, Vite + React) when it is missing or
# older than its sources; the gateway serves it at /.
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
  # playwright-core, typescript) and the console workspace (Vite, React). It runs again
  # whenever the lock file changes.
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

ensure_console() {
  # The web console is built from source here, never downloaded: npm run build (tsc, then
  # vite) into console/dist, again whenever its sources, the generated client or the lock
  # file change. The stamp is a hash of them all.
  local stamp="$ROOT/console/dist/.govflow-build"
  local want
  want="$(cd "$ROOT" && find console/src console/index.html console/vite.config.ts \
    console/tsconfig.json console/package.json clients/ts/src package-lock.json -type f \
    -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return; fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "govflow: npm is missing: the web console is not built (the API still serves)" >&2
    return
  fi
  echo "govflow: building the web console (console/ -> console/dist)" >&2
  if npm run --silent build -w console --prefix "$ROOT" >"$ROOT/node_modules/.console-build.log" 2>&1; then
    echo "$want" >"$stamp"
    rm -f "$ROOT/node_modules/.console-build.log"
  else
    echo "govflow: the console build failed (see node_modules/.console-build.log); the tests will report it" >&2
  fi
}

ensure_chromium() {
  # The browser tests drive Debian's chromium: Playwright's own browser builds cannot be
  # downloaded here. Installed from apt when missing and we are root (CI is), with a Chinese
  # font (the console's screenshots are in Chinese); otherwise the browser tests fail and
  # say how to install it.
  local want=()
  [[ -x /usr/bin/chromium ]] || want+=(chromium)
  [[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]] || want+=(fonts-wqy-microhei)
  if [[ ${#want[@]} == 0 ]]; then return; fi
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "govflow: installing ${want[*]} from apt for the browser tests (first run only)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}"; } \
      >/dev/null || echo "govflow: could not install ${want[*]}; the browser tests will report it" >&2
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
    ensure_console
    ensure_chromium
    ensure_prometheus
    export PATH="$ROOT/node_modules/.bin:$PATH"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  gen-clients)
    ensure_npm
    exec "$VENV/bin/python" -m govflow_cli "$@"
    ;;
  dev-ca)
    # A development CA and the TLS certificates of the scale-out stack (govflow/devca.py),
    # into .data/tls or the folder given; docker-compose.yml mounts them.
    shift || true
    exec "$VENV/bin/python" -m govflow.devca "$@"
    ;;
  bench)
    # A tool beside the runtime (benchmarks/), not a command of the govflow package.
    shift || true
    exec "$VENV/bin/python" -m benchmarks "$@"
    ;;
  up)
    shift || true
    ensure_npm
    ensure_console
    exec "$VENV/bin/python" -m govflow_cli up "$@"
    ;;
  *)
    shift || true
    exec "$VENV/bin/python" -m govflow_cli "$cmd" "$@"
    ;;
esac
