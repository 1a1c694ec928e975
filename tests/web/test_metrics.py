"""``GET /metrics`` (contract section 13): token, series, counts after real work, and the
sum over several gunicorn workers."""

from __future__ import annotations

import socket

import pytest
import urllib3
from prometheus_client.parser import text_string_to_metric_families

from pdam.core import errors
from pdam.infra.queue import QUEUES
from tests.factories import run_delivery
from tests.fixtures.network import served

CID = "010101010101"
TOKEN = "metrics-secret"


def scrape(client) -> dict[tuple, float]:
    res = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert res.status_code == 200 and res.content_type.startswith("text/plain")
    return parse(res.get_data(as_text=True))


def parse(text: str) -> dict[tuple, float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_no_token_configured_is_404(client):
    res = client.get("/metrics")
    assert res.status_code == 404 and res.json["error"] == 404


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN])
def test_missing_or_wrong_token_is_401(make_app, authorization):
    client = make_app(METRICS_TOKEN=TOKEN).test_client()
    res = client.get("/metrics", headers={"Authorization": authorization} if authorization else {})
    assert res.status_code == 401 and res.json == {
        "error": 401,
        "message": "a valid metrics token is required",
    }


def test_counts_after_inquiry_payment_posting_and_a_failed_webhook(
    make_app, partner_headers, seed_bills, post_queued, run_sql
):
    app = make_app(METRICS_TOKEN=TOKEN, WEBHOOK_MAX_ATTEMPTS=1)
    client = app.test_client()
    before = scrape(client)
    seed_bills.simple(CID, ["202001"])
    inq = client.get(f"/tagihan/{CID}", headers=partner_headers)
    assert inq.status_code == 200
    with socket.socket() as s:  # a port nobody listens on: the callback cannot be delivered
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/cb"
    bill = inq.json["tagihan"][0]
    paid = client.post(
        f"/tagihan/{CID}",
        json={
            "inq": inq.headers["X-Cross-Site"],
            "amo": bill["biaya"]["jumlah"],
            "per": [202001],
            "mer": "1",
            "pid": "m1",
        },
        headers={**partner_headers, "X-Async": dead},
    )
    assert paid.status_code == 202
    assert post_queued() == ["accepted"]
    [(delivery_id,)] = run_sql("select id from webhook_delivery where event = 'created'")
    with pytest.raises(errors.GiveUp):
        run_delivery(app, delivery_id)

    after = scrape(client)
    delta = lambda name, **labels: value(after, name, **labels) - value(before, name, **labels)  # noqa: E731
    assert delta("pdam_http_requests_total", route="/tagihan/<cid>", method="GET", status="200") == 1
    assert delta("pdam_http_requests_total", route="/tagihan/<cid>", method="POST", status="202") == 1
    assert delta("pdam_http_request_duration_seconds_count", route="/tagihan/<cid>") == 2
    # Read from the database at scrape time: this test's own database.
    assert value(after, "pdam_payments", status="accepted") == 1
    assert value(after, "pdam_payments", status="created") == 0
    assert value(after, "pdam_payments_needing_attention", reason="webhook failed") == 1
    assert value(after, "pdam_payments_needing_attention", reason="changed") == 0
    assert value(after, "pdam_webhook_deliveries", status="failed") == 1
    assert value(after, "pdam_webhook_deliveries", status="pending") == 1  # the `accepted` callback
    # ... due since it was recorded (the dispatchers' lag): at least as old as it is
    age = run_sql(
        "select extract(epoch from now() - created_at) from webhook_delivery where status = 'pending'"
    )
    assert 0 < value(after, "pdam_oldest_due_callback_age_seconds") <= float(age[0][0]) + 1
    todo = run_sql("select queue_name, count(*) from procrastinate_jobs where status = 'todo' group by 1")
    assert {q: value(after, "pdam_jobs", queue=q, status="todo") for q, _ in todo} == dict(todo)
    assert value(after, "pdam_oldest_todo_job_age_seconds", queue="posting") >= 0


def test_an_idle_service_exports_zero_for_every_known_label_set(make_app, run_sql):
    """An empty queue is 0 for every known queue and unfinished status, never "no data"
    (a series that disappears breaks dashboards and silences alerts)."""
    assert run_sql("select count(*) from procrastinate_jobs where status <> 'succeeded'") == [(0,)]
    samples = scrape(make_app(METRICS_TOKEN=TOKEN).test_client())
    for queue in QUEUES:
        for status in ("todo", "doing", "failed", "cancelled", "aborting", "aborted"):
            assert samples[("pdam_jobs", (("queue", queue), ("status", status)))] == 0
        assert samples[("pdam_oldest_todo_job_age_seconds", (("queue", queue),))] == 0
    for status in ("created", "accepted", "changed", "rejected"):
        assert samples[("pdam_payments", (("status", status),))] == 0
    for reason in ("changed", "rejected", "stuck", "slow", "webhook failed"):
        assert samples[("pdam_payments_needing_attention", (("reason", reason),))] == 0
    for status in ("pending", "refused", "failed"):
        assert samples[("pdam_webhook_deliveries", (("status", status),))] == 0


def test_a_queue_with_jobs_shows_them_and_zero_elsewhere(make_app, partner_headers, seed_bills):
    client = make_app(METRICS_TOKEN=TOKEN).test_client()
    seed_bills.simple(CID, ["202001"])
    inq = client.get(f"/tagihan/{CID}", headers=partner_headers)
    body = {"inq": inq.headers["X-Cross-Site"], "amo": inq.json["tagihan"][0]["biaya"]["jumlah"]}
    body |= {"per": [202001], "mer": "1", "pid": "m0"}
    assert client.post(f"/tagihan/{CID}", json=body, headers=partner_headers).status_code == 202
    samples = scrape(client)
    assert samples[("pdam_jobs", (("queue", "posting"), ("status", "todo")))] == 1
    assert samples[("pdam_jobs", (("queue", "maintenance"), ("status", "todo")))] == 0
    assert samples[("pdam_oldest_todo_job_age_seconds", (("queue", "maintenance"),))] == 0
    assert samples[("pdam_oldest_due_callback_age_seconds", ())] == 0  # no X-Async: no callback


def test_payment_counts_follow_posting_and_are_exact(
    make_app, partner_headers, seed_bills, post_queued, run_sql
):
    """The trigger-kept counts equal a count over the payments, through every status."""
    client = make_app(METRICS_TOKEN=TOKEN).test_client()
    seed_bills.simple(CID, ["202001", "202002"])
    inq = client.get(f"/tagihan/{CID}", headers=partner_headers)
    total = sum(b["biaya"]["jumlah"] for b in inq.json["tagihan"])
    body = {
        "inq": inq.headers["X-Cross-Site"],
        "amo": total,
        "per": [202001, 202002],
        "mer": "1",
        "pid": "m2",
    }
    assert client.post(f"/tagihan/{CID}", json=body, headers=partner_headers).status_code == 202
    assert value(scrape(client), "pdam_payments", status="created") == 1
    run_sql("update bill set late_fee = late_fee + 1 where period = '202002'")
    assert post_queued() == ["changed"]
    samples = scrape(client)
    counted = dict(run_sql("select status, count(*) from payment group by status"))
    assert {
        s: value(samples, "pdam_payments", status=s) for s in ("created", "accepted", "changed", "rejected")
    } == {"created": 0, "accepted": 0, "changed": counted["changed"], "rejected": 0}
    assert value(samples, "pdam_payments_needing_attention", reason="changed") == 1


def test_several_gunicorn_workers_add_up(database_url, app_config, tmp_path):
    """Requests served by 3 gunicorn workers: every scrape, whichever worker answers it,
    shows all of them."""
    env = {
        "DATABASE_URL": database_url,
        "JWT_PUBLIC_KEY": app_config["PDAM_JWT_PUBLIC_KEY"],
        "METRICS_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
    }
    with served(env, workers=3) as base:

        def get(path: str, **headers):
            return urllib3.request(
                "GET", base + path, headers={"Connection": "close", **headers}, timeout=5, retries=False
            )

        for _ in range(40):  # new connections: spread over the workers
            assert get("/health/live").status == 200
        counts = set()
        for _ in range(6):
            res = get("/metrics", Authorization=f"Bearer {TOKEN}")
            assert res.status == 200
            counts.add(
                value(
                    parse(res.data.decode()),
                    "pdam_http_requests_total",
                    route="/health/live",
                    method="GET",
                    status="200",
                )
            )
        assert counts == {41.0}  # 40 + the first successful probe (failed probes never reached a worker)
