#!/usr/bin/env bash
# The README's walk-through, against a running service (make run):
#   WEBHOOK_ALLOW_PRIVATE_NETWORKS=1 make run          # in one terminal
#   TOKEN=$(cat instance/demo-token) scripts/walkthrough.sh   # in another (BASE=http://127.0.0.1:<PORT>)
# Inquiry, payment with a webhook, status, the callbacks, reversal, audit.
# With --sandbox: the sandbox's test customers with a sandbox token (TOKEN from
# `.venv/bin/flask --app wsgi token issue 00 --sandbox`): each outcome, the callbacks log, a resend,
# the sandbox's audit and its reset (docs/partners.md, "Testing your integration").
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
$py "$here/scripts/webhook_receiver.py" --port "${RECEIVER_PORT:-8099}" --secret "$secret" >"$log" 2>&1 &
receiver=$!
trap 'kill $receiver 2>/dev/null; rm -f "$log" "$log.h"' EXIT
sleep 1

if [ "${1:-}" = "--sandbox" ]; then
  # pay CID PID: inquire, then pay every bill shown, with callbacks to the receiver.
  pay() {
    local cid=$1 pid=$2 shown inq amo per
    shown=$(curl -s -D "$log.h" -H "$AUTH" "$BASE/tagihan/$cid")
    inq=$(tr -d '\r' <"$log.h" | awk -F': ' 'tolower($1)=="x-cross-site"{print $2}')
    amo=$(echo "$shown" | $py -c 'import json,sys; print(sum(b["biaya"]["jumlah"] for b in json.load(sys.stdin)["tagihan"]))')
    per=$(echo "$shown" | $py -c 'import json,sys; print(json.dumps([int(b["periode"]) for b in json.load(sys.stdin)["tagihan"]]))')
    show curl -s -i -X POST -H "$AUTH" -H "Content-Type: application/json" \
      -H "X-Async: http://127.0.0.1:${RECEIVER_PORT:-8099}/callback" -H "X-Async-Token: Bearer my-callback-secret" \
      -d "{\"inq\":\"$inq\",\"pid\":\"$pid\",\"amo\":$amo,\"mer\":\"1234\",\"per\":$per}" \
      "$BASE/tagihan/$cid"
  }
  RUN=$(date +%s)
  show curl -s -i -H "$AUTH" "$BASE/tagihan/990000000001"
  for cid in 990000000001 990000000002 990000000003 990000000004; do pay $cid "sb-$cid-$RUN"; done
  show curl -s -i -H "$AUTH" "$BASE/status/990000000004?pid=sb-990000000004-$RUN"
  sleep 12   # 990000000004: two attempts fail (ledger unreachable), the third, 3 s later, posts it
  for cid in 990000000001 990000000002 990000000003 990000000004; do
    show curl -s -i -H "$AUTH" "$BASE/status/$cid?pid=sb-$cid-$RUN"
  done
  show curl -s -i -H "$AUTH" "$BASE/tagihan/990000000005"
  show curl -s -H "$AUTH" "$BASE/tagihan/990000000006"
  show curl -s -i -H "$AUTH" "$BASE/tagihan/010101010101"
  echo "\$ # what the webhook receiver got"
  cat "$log"
  show curl -s -H "$AUTH" "$BASE/callbacks?limit=2"
  EVENT=$(curl -s -H "$AUTH" "$BASE/callbacks?limit=1" | $py -c 'import json,sys; print(json.load(sys.stdin)["callbacks"][0]["event_id"])')
  show curl -s -i -X POST -H "$AUTH" "$BASE/callbacks/$EVENT/resend"
  TODAY=$(TZ=Asia/Jakarta date +%Y-%m-%d)
  show curl -s -H "$AUTH" "$BASE/audit?tgl=$TODAY&limit=2"
  show curl -s -i -X POST -H "$AUTH" "$BASE/sandbox/reset"
  exit 0
fi

show curl -s -i -H "$AUTH" "$BASE/tagihan/$CID"
INQ=$(curl -s -D - -o /dev/null -H "$AUTH" "$BASE/tagihan/$CID" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cross-site"{print $2}')
PID="evid-$(date +%s)"
show curl -s -i -X POST -H "$AUTH" -H "Content-Type: application/json" \
  -H "X-Async: http://127.0.0.1:${RECEIVER_PORT:-8099}/callback" -H "X-Async-Token: Bearer my-callback-secret" \
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
