"""``GET /metrics``: Prometheus text format, behind ``METRICS_TOKEN`` (unset: 404).

HTTP series (``pdam_http_requests_total``, ``pdam_http_request_duration_seconds``) are
counted by the process that served the request; with several gunicorn workers,
prometheus-client's multiprocess mode adds them up (``PROMETHEUS_MULTIPROC_DIR``, set by
gunicorn.conf.py). Queue, payment, attention and webhook series are read from PostgreSQL
at scrape time (sql/queries/metrics.sql), so they are true whichever process did the work.
Every known label set is exported, with 0 when nothing matches (Prometheus: avoid
missing metrics), so an idle service never shows "no data".
"""

from __future__ import annotations

import hmac
import os

from flask import Blueprint, Response, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from werkzeug.exceptions import NotFound

from ..core import states
from ..infra import port, queue
from ..infra.port import Plan
from ..infra.sql import queries
from . import runtime
from .errors import Unauthorized

Q = queries("metrics")
bp = Blueprint("metrics", __name__)

REQUESTS = Counter(
    "pdam_http_requests",
    "HTTP requests answered, by route template, method and status",
    ["route", "method", "status"],
)
DURATION = Histogram(
    "pdam_http_request_duration_seconds",
    "Time until the response starts, by route template",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
#: Job statuses ``pdam_jobs`` exports for every known queue, 0 when none (succeeded jobs
#: are not counted: they only grow). An idle queue shows 0, never "no data".
JOB_STATUSES = ("todo", "doing", "failed", "cancelled", "aborting", "aborted")
#: Label of a request that matched no route (never the raw path: unbounded and may hold ids).
UNMATCHED = "(unmatched)"


#: The labelled series of each (route, method, status) seen: ``labels()`` costs more than
#: the count itself, and the set is small (routes x methods x statuses).
_series: dict[tuple, tuple] = {}


def observe(route: str | None, method: str, status: int, seconds: float) -> None:
    key = (route, method, status)
    series = _series.get(key)
    if series is None:
        label = route or UNMATCHED
        series = _series[key] = (REQUESTS.labels(label, method, str(status)), DURATION.labels(label))
    series[0].inc()
    series[1].observe(seconds)


@port.plan
def _fetch(db: port.Db, name: str) -> Plan[list]:
    """The rows of statement ``name`` of sql/queries/metrics.sql (through the port)."""
    return (yield port.fetch(Q[name]))


class DatabaseCollector:
    """Gauges read from PostgreSQL when collected."""

    def __init__(self, conn):
        self.conn = conn

    def _rows(self, name: str):
        return _fetch(self.conn, name)

    def collect(self):
        jobs = GaugeMetricFamily("pdam_jobs", "Unfinished jobs of the queue", labels=["queue", "status"])
        counted = {(row.queue_name, row.status): row.n for row in self._rows("jobs")}
        queues = sorted({*queue.QUEUES, *(name for name, _ in counted)})
        for queue_name in queues:
            for status in JOB_STATUSES:
                jobs.add_metric([queue_name, status], counted.get((queue_name, status), 0))
        yield jobs
        oldest = GaugeMetricFamily(
            "pdam_oldest_todo_job_age_seconds",
            "How long the oldest due job of a queue has waited",
            labels=["queue"],
        )
        ages = {row.queue_name: row.age for row in self._rows("oldest_todo")}
        for queue_name in sorted({*queues, *ages}):
            oldest.add_metric([queue_name], max(ages.get(queue_name, 0.0), 0.0))
        yield oldest
        payments = GaugeMetricFamily("pdam_payments", "Payments by status", labels=["status"])
        counted = {row.status: row.n for row in self._rows("payments")}
        for status in (states.CREATED, *states.FINAL):
            payments.add_metric([status], counted.get(status, 0))
        yield payments
        attention = GaugeMetricFamily(
            "pdam_payments_needing_attention",
            "Payments an operator should look at, by reason",
            labels=["reason"],
        )
        reasons = {row.reason: row.n for row in self._rows("attention")}
        for reason in ("changed", "rejected", "stuck", "slow", "webhook failed"):
            attention.add_metric([reason], reasons.get(reason, 0))
        yield attention
        webhooks = GaugeMetricFamily(
            "pdam_webhook_deliveries", "Webhook deliveries not delivered, by status", labels=["status"]
        )
        deliveries = {row.status: row.n for row in self._rows("webhooks")}
        for status in ("pending", "refused", "failed"):
            webhooks.add_metric([status], deliveries.get(status, 0))
        yield webhooks
        (late,) = self._rows("oldest_due_callback")
        yield GaugeMetricFamily(
            "pdam_oldest_due_callback_age_seconds",
            "How long the oldest callback due to be sent has waited (0: none)",
            value=max(late.age or 0.0, 0.0),
        )


def _process_registry() -> CollectorRegistry:
    """This process's series, or every process's in multiprocess mode."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


def _authorize() -> None:
    token = current_app.config.get("METRICS_TOKEN")
    if not token:
        raise NotFound()
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise Unauthorized("a valid metrics token is required")


# Not in the partners' API document (/openapi.json, /docs): Prometheus calls it, with a token
# of its own (docs/operators.md, "Monitoring and limits"); pdam/peti/openapi.py leaves it out.
@bp.get("/metrics")
def get_metrics():
    _authorize()
    with runtime.transaction() as conn:
        database = CollectorRegistry(auto_describe=False)
        database.register(DatabaseCollector(conn))
        body = generate_latest(_process_registry()) + generate_latest(database)
    return Response(body, content_type=CONTENT_TYPE_LATEST)
