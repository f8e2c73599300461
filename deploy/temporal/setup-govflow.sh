#!/bin/sh
# Prepares the Temporal cluster for Govflow, idempotently (runs on every `docker compose up`):
# the namespace, then the custom search attributes admins filter on. SEARCH_ATTRIBUTES
# ("Name=Type ...") is set in docker-compose.yml from workflows/models.py SEARCH_ATTRIBUTES;
# tests/integration/test_compose.py keeps the two equal.
set -eu
: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}" "${SEARCH_ATTRIBUTES:?}"
RETENTION=${NAMESPACE_RETENTION:-720h}

# mTLS to the frontend when compose gives the files (TEMPORAL_TLS_CA, _CERT, _KEY and
# _SERVER_NAME, the Temporal UI's variables too): passed as flags, which every version of
# the temporal CLI takes. "$@" holds them.
set --
if [ -n "${TEMPORAL_TLS_CA:-}" ]; then set -- "$@" --tls-ca-path "$TEMPORAL_TLS_CA"; fi
if [ -n "${TEMPORAL_TLS_CERT:-}" ]; then
  set -- "$@" --tls-cert-path "$TEMPORAL_TLS_CERT" --tls-key-path "${TEMPORAL_TLS_KEY:?}"
fi
if [ -n "${TEMPORAL_TLS_SERVER_NAME:-}" ]; then
  set -- "$@" --tls-server-name "$TEMPORAL_TLS_SERVER_NAME"
fi

tries=0
until temporal operator cluster health "$@" >/dev/null 2>&1; do
  tries=$((tries + 1)); [ "$tries" -lt 60 ] || { echo "Temporal is not healthy"; exit 1; }
  sleep 2
done
temporal operator namespace describe "$@" -n "$TEMPORAL_NAMESPACE" >/dev/null 2>&1 \
  || temporal operator namespace create "$@" -n "$TEMPORAL_NAMESPACE" --retention "$RETENTION"

for sa in $SEARCH_ATTRIBUTES; do
  name=${sa%%=*}
  kind=${sa##*=}
  tries=0
  # A namespace just created takes a moment to reach every frontend: retry, but never hide
  # a real failure (the service exits non-zero and the services that need it do not start).
  until temporal operator search-attribute list "$@" -n "$TEMPORAL_NAMESPACE" | grep -qw "$name" \
      || temporal operator search-attribute create "$@" -n "$TEMPORAL_NAMESPACE" --name "$name" --type "$kind"; do
    tries=$((tries + 1)); [ "$tries" -lt 30 ] || { echo "could not register $name"; exit 1; }
    sleep 2
  done
  echo "search attribute $name ($kind) registered"
done
