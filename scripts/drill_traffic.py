"""The partner's side of the drills (scripts/failover_drill.py, scripts/ha_drill.py): a
webhook receiver that counts callbacks by X-Event-Id, payments sent after an inquiry with an
X-Async callback, every answer timed, and waiting for the job server to drain."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg

from bench import common


class Receiver:
    """Callbacks received, by X-Event-Id (the same for every attempt of one delivery)."""

    def __init__(self):
        self.events: Counter[str] = Counter()
        self.first: dict[str, float] = {}  # X-Event-Id -> when it first came (monotonic)
        lock = threading.Lock()
        events, first = self.events, self.first

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    event = self.headers.get("X-Event-Id", "")
                    events[event] += 1
                    first.setdefault(event, time.monotonic())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Answer:
    kind: str  # "inquiry" or "payment"
    sent: float
    received: float
    status: int  # 0: no HTTP answer (connection error or timeout)
    retry_after: str | None
    pid: str = ""


@dataclass
class Traffic:
    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, answer: Answer) -> Answer:
        with self.lock:
            self.answers.append(answer)
        return answer


def _call(port: int, method: str, path: str, headers: dict, body: bytes | None, kind: str, pid: str = ""):
    sent = time.monotonic()
    conn = HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        answer = Answer(kind, sent, time.monotonic(), response.status, response.getheader("Retry-After"), pid)
        return answer, response, data
    except OSError:
        return Answer(kind, sent, time.monotonic(), 0, None, pid), None, b""
    finally:
        conn.close()


def pay_one(port: int, token: str, k: int, callback: str, traffic: Traffic) -> None:
    """An inquiry, then the payment of its bills with an X-Async callback."""
    cid = common.customer_id(k)
    auth = {"Authorization": f"Bearer {token}"}
    answer, response, _ = _call(port, "GET", f"/tagihan/{cid}", auth, None, "inquiry")
    traffic.add(answer)
    if answer.status != 200:
        return
    pid = f"drill-{k}"
    body = json.dumps(
        {
            "inq": response.getheader("X-Cross-Site"),
            "pid": pid,
            "amo": common.customer_total(k),
            "mer": common.MERCHANT,
            "per": [int(p) for p in common.PERIODS],
        }
    ).encode()
    headers = {**auth, "Content-Type": "application/json", "X-Async": callback}
    answer, _, _ = _call(port, "POST", f"/tagihan/{cid}", headers, body, "payment", pid)
    traffic.add(answer)


def drain(url: str, seconds: float) -> None:
    """Wait until the job server has posted every payment and settled every callback."""
    deadline = time.monotonic() + seconds
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            open_payments = conn.execute("select count(*) from payment where status = 'created'").fetchone()[
                0
            ]
            open_hooks = conn.execute(
                "select count(*) from webhook_delivery where status = 'pending'"
            ).fetchone()[0]
            if open_payments == 0 and open_hooks == 0:
                return
            time.sleep(1)
    common.log(f"still open after {seconds:.0f} s: {open_payments} payments, {open_hooks} callbacks")


@dataclass
class HealthSample:
    sent: float
    seconds: float
    status: int  # 0: no answer within 5 s
    database: str | None
    commit: str | None


class HealthSampler:
    """``GET /health`` every ``every`` seconds on a connection of its own, each answer timed."""

    def __init__(self, port: int, every: float = 0.5):
        self.samples: list[HealthSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(port, every), daemon=True)
        self._thread.start()

    def _run(self, port: int, every: float) -> None:
        while not self._stop.wait(every):
            sent = time.monotonic()
            conn = HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.request("GET", "/health")
                response = conn.getresponse()
                data = json.loads(response.read() or b"{}")
                sample = HealthSample(
                    sent, time.monotonic() - sent, response.status, data.get("database"), data.get("commit")
                )
            except (OSError, ValueError):
                sample = HealthSample(sent, time.monotonic() - sent, 0, None, None)
            finally:
                conn.close()
            self.samples.append(sample)

    def stop(self) -> list[HealthSample]:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.samples


def health_figures(samples: list[HealthSample], start: float) -> dict:
    """How /health answered: the slowest answer, its statuses, and when it said the database
    could not commit (seconds since ``start``)."""
    cannot = [round(s.sent - start, 1) for s in samples if s.status == 503 and s.commit == "unavailable"]
    return {
        "samples": len(samples),
        "slowest_seconds": round(max((s.seconds for s in samples), default=0.0), 3),
        "statuses": dict(Counter(str(s.status) for s in samples)),
        "cannot_commit_from_to": [cannot[0], cannot[-1]] if cannot else None,
        "cannot_commit_samples": len(cannot),
    }
