#!/bin/sh
# Creates Temporal's two PostgreSQL databases and brings their schemas to the version this
# admin-tools image ships — what temporalio/samples-server's compose/scripts/setup-postgres.sh
# does, made safe to run on every `docker compose up`: once a schema exists, only
# update-schema runs (it applies just the versions not yet applied, so it also upgrades the
# schema after the Temporal images are bumped).
set -eu
: "${SQL_HOST:?}" "${SQL_PORT:?}" "${SQL_USER:?}" "${SQL_PASSWORD:?}"
SCHEMA=/etc/temporal/schema/postgresql/v12
tool() { temporal-sql-tool --plugin postgres12 --ep "$SQL_HOST" -p "$SQL_PORT" -u "$SQL_USER" "$@"; }

until nc -z "$SQL_HOST" "$SQL_PORT"; do echo "waiting for PostgreSQL"; sleep 1; done
for pair in "temporal:temporal" "temporal_visibility:visibility"; do
  db=${pair%%:*}
  dir=$SCHEMA/${pair##*:}/versioned
  if tool --db "$db" update-schema -d "$dir" 2>/dev/null; then
    echo "$db: schema up to date"
    continue
  fi
  echo "$db: setting up the schema"
  tool --db "$db" create || echo "$db: exists already"
  tool --db "$db" setup-schema -v 0.0
  tool --db "$db" update-schema -d "$dir"
done
