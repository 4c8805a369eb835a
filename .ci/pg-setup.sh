#!/usr/bin/env bash
# Installs (when missing) and starts PostgreSQL, and creates the role and database `keygate`
# (password `keygate`) that the keygate-sqlx PostgreSQL tests use. Idempotent: safe to run again.
#
#   eval "$(bash .ci/pg-setup.sh)"        # exports KEYGATE_TEST_POSTGRES_URL (and the TLS
#                                         # test's KEYGATE_TEST_POSTGRES_ROOT_CERT, _CERT_HOST)
#
# The cluster serves TLS (Debian's clusters do, with the snakeoil certificate: `ssl = on`); if
# it does not, this turns it on with that certificate.
#
# Progress goes to stderr; the only lines on stdout are `export …` lines.
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

# TLS, for `sslmode=require` / `verify-full` (keygate-sqlx's TLS tests).
if [ "$(psql_admin -tAc 'SHOW ssl')" != on ]; then
    log "turning TLS on with the snakeoil certificate"
    if [ ! -e /etc/ssl/private/ssl-cert-snakeoil.key ]; then
        export DEBIAN_FRONTEND=noninteractive
        command -v make-ssl-cert >/dev/null || { apt-get update -qq >&2; apt-get install -y -qq ssl-cert >&2; }
        make-ssl-cert generate-default-snakeoil >&2
    fi
    # The key is readable by group ssl-cert only.
    getent group ssl-cert >/dev/null && usermod -a -G ssl-cert postgres
    psql_admin -c "ALTER SYSTEM SET ssl_cert_file = '/etc/ssl/certs/ssl-cert-snakeoil.pem'"
    psql_admin -c "ALTER SYSTEM SET ssl_key_file = '/etc/ssl/private/ssl-cert-snakeoil.key'"
    psql_admin -c "ALTER SYSTEM SET ssl = on"
    psql_admin -c "SELECT pg_reload_conf()" >/dev/null
    sleep 1
    if [ "$(psql_admin -tAc 'SHOW ssl')" != on ]; then
        # A server started before postgres joined ssl-cert cannot read the key: restart it.
        log "restarting cluster $version/main for TLS"
        pg_ctlcluster "$version" main restart >&2
        for _ in $(seq 1 30); do
            as_postgres pg_isready -q -h 127.0.0.1 -p "$port" && break
            sleep 1
        done
    fi
    [ "$(psql_admin -tAc 'SHOW ssl')" = on ] || { log "PostgreSQL does not serve TLS"; exit 1; }
fi
# The certificate the server presents (self-signed) and the host name in it, so a test can
# trust it as a private root and connect with sslmode=verify-full.
cert=$(psql_admin -tAc 'SHOW ssl_cert_file')
case "$cert" in
    /*) ;;
    *) cert="$(psql_admin -tAc 'SHOW data_directory')/$cert" ;;
esac
if [ -r "$cert" ] && command -v openssl >/dev/null; then
    cert_host=$(openssl x509 -in "$cert" -noout -ext subjectAltName 2>/dev/null \
        | grep -o 'DNS:[^,]*' | head -n 1 | cut -d: -f2 || true)
    [ -n "$cert_host" ] || cert_host=$(openssl x509 -in "$cert" -noout -subject -nameopt multiline \
        | sed -n 's/^ *commonName *= *//p' || true)
    if [ -n "$cert_host" ]; then
        echo "export KEYGATE_TEST_POSTGRES_ROOT_CERT=$(printf '%q' "$cert")"
        echo "export KEYGATE_TEST_POSTGRES_CERT_HOST=$(printf '%q' "$cert_host")"
    fi
fi

echo "export KEYGATE_TEST_POSTGRES_URL=postgres://keygate:keygate@127.0.0.1:${port}/keygate"
