#!/usr/bin/env bash
# The README's walk-through, against a running service (make run):
#   WEBHOOK_ALLOW_PRIVATE_NETWORKS=1 make run          # in one terminal
#   TOKEN=$(cat instance/demo-token) scripts/walkthrough.sh   # in another (BASE=http://127.0.0.1:<PORT>)
# Inquiry, payment with a webhook, status, the callbacks, reversal, audit.
set -euo pipefail
BASE=${BASE:-http://127.0.0.1:5000}
CID=${CID:-010101010101}
: "${TOKEN:?set TOKEN to a partner token (make run prints one)}"
AUTH="Authorization: Bearer $TOKEN"
here=$(cd "$(dirname "$0")/.." && pwd)
flask="$here/.venv/bin/python -m flask --app wsgi"
py="$here/.venv/bin/python"
show() { echo; echo "\$ $*" | sed "s/$TOKEN/\$TOKEN/g"; "$@"; echo; }

# A local receiver for the callbacks, verifying their signature.
secret=$(cd "$here" && $flask partner secret 00)
log=$(mktemp)
$py "$here/scripts/webhook_receiver.py" --port 8099 --secret "$secret" >"$log" 2>&1 &
receiver=$!
trap 'kill $receiver 2>/dev/null' EXIT
sleep 1

show curl -s -i -H "$AUTH" "$BASE/tagihan/$CID"
INQ=$(curl -s -D - -o /dev/null -H "$AUTH" "$BASE/tagihan/$CID" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cross-site"{print $2}')
PID="evid-$(date +%s)"
show curl -s -i -X POST -H "$AUTH" -H "Content-Type: application/json" \
  -H "X-Async: http://127.0.0.1:8099/callback" -H "X-Async-Token: Bearer my-callback-secret" \
  -d "{\"inq\":\"$INQ\",\"pid\":\"$PID\",\"amo\":177600,\"mer\":\"1234\",\"per\":[202005,202006]}" \
  "$BASE/tagihan/$CID"
sleep 3
PAT=$(curl -s -H "$AUTH" "$BASE/status/$CID?pid=$PID" | $py -c 'import json,sys; print(json.load(sys.stdin)["data"]["pat"])')
show curl -s -H "$AUTH" "$BASE/status/$CID?pid=$PID"
show curl -s -X DELETE -H "$AUTH" "$BASE/tagihan/$CID?pid=$PID&pat=$PAT"
sleep 3
echo "\$ # what the webhook receiver got"
cat "$log"
TODAY=$(TZ=Asia/Jakarta date +%Y-%m-%d)
show curl -s -H "$AUTH" "$BASE/audit?tgl=$TODAY"
show curl -s -H "$AUTH" "$BASE/audit?tgl=$TODAY&format=csv"
