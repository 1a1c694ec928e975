#!/usr/bin/env bash
# Contract fuzzing against a live service, as a new user would run it (docs/partners.md: API
# documentation): gunicorn on a fresh database, the demo seed, then
#   schemathesis run http://127.0.0.1:<port>/openapi.json --checks all -H "Authorization: Bearer <demo token>"
# with schemathesis.toml (demo customers, hooks). Exits non-zero on any failure.
#
#   scripts/contract_fuzz.sh                # embedded PostgreSQL (instance/pgdata), database pdam_contract_fuzz
#   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres scripts/contract_fuzz.sh
#                                           # that server, database pdam_contract_fuzz (dropped and recreated)
#   FUZZ_SECONDS=120 scripts/contract_fuzz.sh   # Schemathesis' time budget (default 60)
#   FUZZ_SEED=random scripts/contract_fuzz.sh   # new cases (default: a fixed seed, as CI runs it)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_SEED=${FUZZ_SEED:-20261130}
SEED_ARGS=()
[ "$FUZZ_SEED" = random ] || SEED_ARGS=(--seed "$FUZZ_SEED")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pdam-contract-fuzz.XXXXXX")
PIDS=()

cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do  # each started with setsid: its id is its process group
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ]; then
    echo "== contract fuzz failed ($status); last lines of the service logs:"
    tail -n 20 "$WORK/web.log" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A fresh database: on DATABASE_URL's server, else on the embedded one.
DATABASE_URL=$(timeout 120 "$PY" - <<'PY'
import os
import urllib.parse

import psycopg

NAME = "pdam_contract_fuzz"
admin = os.environ.get("DATABASE_URL")
if not admin:
    from pathlib import Path

    from pdam.infra import embedded

    admin = embedded.start(Path("instance") / "pgdata", database="postgres")
with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
    conn.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (NAME,))
    conn.execute(f'drop database if exists "{NAME}"')
    conn.execute(f'create database "{NAME}"')
print(urllib.parse.urlsplit(admin)._replace(path="/" + NAME).geturl())
PY
)
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export DATABASE_URL PORT
export JWT_PRIVATE_KEY_FILE="$WORK/keys/private.pem" JWT_PUBLIC_KEY_FILE="$WORK/keys/public.pem"
export SECRET_KEYS_FILE="$WORK/keys/secret-keys"
export PARTNER_RATE_LIMIT=0 WEB_CONCURRENCY=2 PROMETHEUS_MULTIPROC_DIR="$WORK/metrics"
unset METRICS_TOKEN
# No job worker here: the fuzzer's X-Async URLs name hosts anywhere, and only the worker
# would call them. Payments stay `created`, so the walk's reversal answers its documented 409.
FLASK=(timeout 120 "$PY" -m flask --app wsgi)

echo "== contract fuzz: fresh database, demo seed, gunicorn on 127.0.0.1:$PORT"
"${FLASK[@]}" token keygen "$WORK/keys" >/dev/null
"${FLASK[@]}" secrets keygen --file "$SECRET_KEYS_FILE" >/dev/null
"${FLASK[@]}" db upgrade >/dev/null
"${FLASK[@]}" demo seed --port "$PORT" >/dev/null
TOKEN=$("${FLASK[@]}" token issue 00 | tail -n 1)

setsid .venv/bin/gunicorn --config gunicorn.conf.py --bind "127.0.0.1:$PORT" wsgi:app >"$WORK/web.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 60); do
  curl -fsS -m 2 "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fsS -m 2 "http://127.0.0.1:$PORT/health" >/dev/null

echo "== schemathesis run (--max-time $FUZZ_SECONDS, schemathesis.toml)"
timeout $((FUZZ_SECONDS + 180)) .venv/bin/schemathesis --config-file schemathesis.toml run \
  "http://127.0.0.1:$PORT/openapi.json" --checks all -H "Authorization: Bearer $TOKEN" \
  --max-time "$FUZZ_SECONDS" --request-timeout 10 --no-color "${SEED_ARGS[@]}"
