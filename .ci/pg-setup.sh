#!/usr/bin/env bash
# Installs (when missing) and starts PostgreSQL, and creates the role and database `keygate`
# (password `keygate`) that the keygate-sqlx PostgreSQL tests use. Idempotent: safe to run again.
#
#   eval "$(bash .ci/pg-setup.sh)"        # exports KEYGATE_TEST_POSTGRES_URL
#
# Progress goes to stderr; the only line on stdout is the `export …` line.
set -euo pipefail

log() { echo "pg-setup: $*" >&2; }
as_postgres() {
    if [ "$(id -un)" = postgres ]; then "$@"; else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi
}

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    log "installing PostgreSQL (apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi

version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$version main"; then
    log "creating cluster $version/main"
    pg_createcluster "$version" main >&2
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
    log "starting cluster $version/main"
    pg_ctlcluster "$version" main start >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')

for _ in $(seq 1 30); do
    as_postgres pg_isready -q -h 127.0.0.1 -p "$port" && break
    sleep 1
done
as_postgres pg_isready -q -h 127.0.0.1 -p "$port" || { log "PostgreSQL did not start"; exit 1; }

psql_admin() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -d postgres "$@"; }
# The local `postgres` superuser may need peer auth over the socket rather than TCP.
if ! psql_admin -c 'SELECT 1' >/dev/null 2>&1; then
    psql_admin() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres "$@"; }
fi

if [ "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'keygate'")" != 1 ]; then
    log "creating role keygate"
    psql_admin -c "CREATE ROLE keygate LOGIN PASSWORD 'keygate'"
else
    psql_admin -c "ALTER ROLE keygate LOGIN PASSWORD 'keygate'"
fi
if [ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = 'keygate'")" != 1 ]; then
    log "creating database keygate"
    psql_admin -c "CREATE DATABASE keygate OWNER keygate"
fi
# The tests give each case a schema of its own, and terminate their own listener connections
# to exercise reconnection (pg_signal_backend allows that for sessions of the same role).
psql_admin -d keygate -c "GRANT ALL ON SCHEMA public TO keygate" >/dev/null

echo "export KEYGATE_TEST_POSTGRES_URL=postgres://keygate:keygate@127.0.0.1:${port}/keygate"
