"""The Grafana dashboard and the Prometheus alert rules in ops/ query only series the
service exports (a dashboard on a renamed metric shows nothing, silently)."""

from __future__ import annotations

import json
import re

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT

DASHBOARD = ROOT / "ops" / "grafana" / "pdam-payments.json"
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
METRIC_RE = re.compile(r"\bpdam_[a-z_]+\b")
TOKEN = "t"


def exported(make_app) -> set[str]:
    """Every series a real scrape declares or returns (counters' _total, histograms' _bucket...;
    a gauge of an empty table is declared with no sample)."""
    client = make_app(METRICS_TOKEN=TOKEN).test_client()
    client.get("/health/live")  # so the HTTP series have samples
    text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)
    families = list(text_string_to_metric_families(text))
    return {f.name for f in families} | {s.name for f in families for s in f.samples}


def dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in doc["panels"] for t in panel.get("targets", [])]


def alert_exprs() -> list[str]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in doc["groups"] for rule in group["rules"]]


def test_every_series_the_dashboard_and_alerts_query_is_exported(make_app):
    names = exported(make_app)
    for expr in dashboard_exprs() + alert_exprs():
        used = set(METRIC_RE.findall(expr))
        assert used, expr
        assert used <= names, (expr, used - names)


def test_the_dashboard_covers_what_operators_watch():
    queried = " ".join(dashboard_exprs())
    for series in (
        "pdam_http_requests_total",
        "pdam_http_request_duration_seconds_bucket",
        "pdam_jobs",
        "pdam_oldest_todo_job_age_seconds",
        "pdam_payments",
        "pdam_payments_needing_attention",
        "pdam_webhook_deliveries",
    ):
        assert series in queried, series
    assert re.search(r'status=~"4\.\.\|5\.\."', queried)  # the 4xx/5xx panel


def test_three_alert_rules_or_more_each_explained():
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    assert len(rules) >= 3
    for rule in rules:
        assert rule["alert"].startswith("Pdam") and rule["annotations"]["summary"]
