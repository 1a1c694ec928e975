"""A minimal webhook receiver for demos: prints each callback and checks its signature.

    .venv/bin/python scripts/webhook_receiver.py --port 8099 --secret "$(.venv/bin/flask --app wsgi partner secret 00)"

Then send payments with ``-H "X-Async: http://127.0.0.1:8099/callback"`` (the
service must run with WEBHOOK_ALLOW_PRIVATE_NETWORKS=1 to call a loopback
address). Answers 200 to a valid signature, 401 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

MAX_AGE_SECONDS = 300


def verify(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """Check ``X-Signature: t=<unix>,v1=<hex>`` over ``"<t>.<raw body>"``."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > MAX_AGE_SECONDS:
        return False  # too old (or from the future): a replay
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--secret", required=True, help="the partner's webhook secret")
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            ok = verify(args.secret, self.headers.get("X-Signature", ""), body)
            event = json.loads(body or b"{}")
            print(
                f"{self.headers.get('X-Event-Id')} {event.get('status')} {event.get('code')}"
                f" nob={event.get('data', {}).get('nob')} signature={'ok' if ok else 'BAD'}"
                + (" X-Sandbox" if self.headers.get("X-Sandbox") == "true" else ""),
                flush=True,
            )
            print(json.dumps(event), flush=True)
            self.send_response(200 if ok else 401)
            self.end_headers()

        def log_message(self, *a):
            pass

    HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
