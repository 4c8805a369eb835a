#!/usr/bin/env bash
# Property-based test of the Keys API against its own OpenAPI document: starts the axum
# quickstart on a fresh SQLite store on 127.0.0.1, takes the management key it prints, and runs
# schemathesis (no 5xx, every status, content type and body as documented). Bounded: at most
# 3 minutes of schemathesis, then the server is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/ci-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'schemathesis==4.32.5'
fi

cargo build --quiet -p axum-quickstart
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target/debug/axum-quickstart --database-url "sqlite://$work/keys.db" --addr "127.0.0.1:$port" \
    >"$work/out.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

for _ in $(seq 1 100); do
    grep -q "listening on" "$work/out.log" && break
    sleep 0.1
done
key=$(grep -A3 "Manage keys in the browser" "$work/out.log" | grep -o 'mk_live_[A-Za-z0-9_.]*' || true)
if [ -z "$key" ]; then
    echo "schemathesis: the quickstart printed no management key:" >&2
    cat "$work/out.log" >&2
    exit 1
fi

base="http://127.0.0.1:$port"
run() {
    timeout 90 "$venv/bin/schemathesis" run "$base/api/v1/keys/openapi.json" \
        --header "X-Api-Key: $key" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --phases examples,coverage,fuzzing \
        --max-examples 50 \
        --request-timeout 10 \
        "$@"
}
# Reads and creates first: the second pass may revoke or delete the management key itself
# (it finds its id in list answers), after which it can only see 401s.
destructive='^(DELETE |POST .*/(revoke|rotate)$)'
run --exclude-name-regex "$destructive"
run --include-name-regex "$destructive"
