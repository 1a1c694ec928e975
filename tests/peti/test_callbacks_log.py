"""The partner's callbacks log (contract 14.2): ``GET /callbacks`` (filters, paging, the
fields), ``POST /callbacks/<event_id>/resend`` (202, another partner's event 404, over 10
an hour 429), live and sandbox apart; a delivery refused later shows as failed with its
reason, here and in payments_needing_attention, and ``webhook resend --event`` picks it."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from tests.factories import CID, deliver_pending, issue


@pytest.fixture
def hooked(make_app, partner_headers, seed_bills, pay, receiver, post_queued, run_sql):
    """Partner 00: two payments with X-Async to ``receiver``, posted and delivered (4 callbacks)."""
    app = make_app(WEBHOOK_ALLOW_PRIVATE_NETWORKS=True)
    seed_bills.simple(CID, ["202001"])
    seed_bills.simple("020202020202", ["202001"])
    first = pay(partner_headers, CID, pid="p-1", x_async=receiver.url(), x_async_token="Bearer t", app=app)
    second = pay(partner_headers, "020202020202", pid="p-2", x_async=receiver.url(), app=app)
    post_queued()
    assert deliver_pending(app, run_sql) == ["delivered"] * 4
    return app, app.test_client(), first, second


def listing(client, headers, **query):
    res = client.get("/callbacks", query_string=query, headers=headers)
    assert res.status_code == 200, res.json
    return res.json


def test_the_log_lists_the_partners_deliveries_newest_first(hooked, partner_headers, receiver):
    _, client, first, second = hooked
    page = listing(client, partner_headers)
    assert page["next_cursor"] is None
    got = [(c["nob"], c["event"]) for c in page["callbacks"]]
    assert got == [
        (second["nob"], "accepted"),
        (first["nob"], "accepted"),
        (second["nob"], "created"),
        (first["nob"], "created"),
    ]
    entry = page["callbacks"][-1]
    assert list(entry) == [
        "event_id", "nob", "pid", "event", "url", "status", "attempts",
        "last_attempt_at", "last_result", "next_attempt_at",
    ]  # fmt: skip
    assert (entry["pid"], entry["url"], entry["status"], entry["attempts"]) == (
        "p-1",
        receiver.url(),
        "delivered",
        1,
    )
    assert (entry["last_result"], entry["next_attempt_at"]) == (200, None)
    assert dt.datetime.fromisoformat(entry["last_attempt_at"]).tzinfo is not None
    sent = {c["headers"]["X-Event-Id"] for c in receiver.calls}
    assert {c["event_id"] for c in page["callbacks"]} == sent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-07", "2026-12-07T00:00:00+07:00"),
        ("2026-12-07T08:00:00", "2026-12-07T08:00:00+07:00"),
        ("2026-12-07T01:00:00Z", "2026-12-07T01:00:00+00:00"),
        ("2026-12-07t01:00:00.123456789z", "2026-12-07T01:00:00.123456+00:00"),
        ("2016-12-31T23:59:60+00:00", "2016-12-31T23:59:59+00:00"),
        ("2026-12-07 08:00:00+07:00", "2026-12-07T08:00:00+07:00"),
        ("2026-12-07T08:00:00 07:00", "2026-12-07T08:00:00+07:00"),  # "+" unencoded in a URL
        ("yesterday", None),
        ("2026-13-01", None),
    ],
)
def test_since_takes_iso_8601(text, expected):
    from pdam.peti.deliveries import parse_since

    parsed = parse_since(text)
    assert (parsed.isoformat() if parsed else None) == expected


def test_filters_and_paging(hooked, partner_headers, run_sql):
    _, client, first, _ = hooked
    assert [c["event"] for c in listing(client, partner_headers, nob=first["nob"])["callbacks"]] == [
        "accepted",
        "created",
    ]
    assert listing(client, partner_headers, status="pending")["callbacks"] == []
    assert len(listing(client, partner_headers, status="delivered")["callbacks"]) == 4
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).isoformat()
    assert listing(client, partner_headers, since=future)["callbacks"] == []
    assert len(listing(client, partner_headers, since="2020-01-01")["callbacks"]) == 4
    seen, cursor = [], None
    while True:
        page = listing(client, partner_headers, limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [c["event_id"] for c in page["callbacks"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [c["event_id"] for c in listing(client, partner_headers)["callbacks"]]
    assert len(seen) == 4
    assert len(listing(client, partner_headers, limit=500)["callbacks"]) == 4  # the maximum


@pytest.mark.parametrize(
    "query",
    [
        {"status": "refused"},
        {"nob": "12"},
        {"since": "yesterday"},
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "-1"},
        {"cursor": "not-a-cursor"},
        {"cursor": "c12g"},
        {"cursor": "c" + "f" * 16},
    ],
)
def test_bad_filters_are_400(client, partner_headers, query):
    res = client.get("/callbacks", query_string=query, headers=partner_headers)
    assert res.status_code == 400 and res.json["error"] == 400 and list(res.json["errors"]) == list(query)


def test_another_partner_sees_none_and_cannot_resend(hooked, auth_for, partner_headers):
    _, client, _, _ = hooked
    other = auth_for("96", "BANK2")
    assert listing(client, other) == {"callbacks": [], "next_cursor": None}
    event_id = listing(client, partner_headers)["callbacks"][0]["event_id"]
    for target in (event_id, str(uuid.uuid4()), "not-a-uuid"):
        res = client.post(f"/callbacks/{target}/resend", headers=other)
        assert res.json == {"error": 404, "message": "callback event not found"}, target


def test_resend_sends_the_same_event_again_and_is_limited(hooked, partner_headers, receiver, run_sql):
    app, client, first, _ = hooked
    entry = listing(client, partner_headers, nob=first["nob"])["callbacks"][0]
    res = client.post(f"/callbacks/{entry['event_id']}/resend", headers=partner_headers)
    assert (res.status_code, res.data) == (202, b"")
    pending = listing(client, partner_headers, status="pending")["callbacks"]
    assert [(c["event_id"], c["attempts"], c["last_result"]) for c in pending] == [
        (entry["event_id"], 0, None)
    ]
    assert pending[0]["next_attempt_at"] is not None
    assert deliver_pending(app, run_sql) == ["delivered"]
    original, again = [c for c in receiver.calls if c["headers"]["X-Event-Id"] == entry["event_id"]]
    assert again["raw"] == original["raw"] and again["n"] == 2
    for _ in range(9):
        assert (
            client.post(f"/callbacks/{entry['event_id']}/resend", headers=partner_headers).status_code == 202
        )
    over = client.post(f"/callbacks/{entry['event_id']}/resend", headers=partner_headers)
    assert over.status_code == 429 and over.json["error"] == 429
    assert 3590 <= int(over.headers["Retry-After"]) <= 3600
    # An hour later the oldest resend no longer counts.
    run_sql(
        "update webhook_delivery set created_at = created_at - interval '61 minutes' where resend_of is not null"
    )
    assert client.post(f"/callbacks/{entry['event_id']}/resend", headers=partner_headers).status_code == 202


def test_live_and_sandbox_logs_are_apart(hooked, app, keys, partner_headers, pay, post_queued):
    hook_app, client, _, _ = hooked
    sandbox = {"Authorization": f"Bearer {issue(app, keys['ES256']['private'], '00', sandbox=True)}"}
    data = pay(sandbox, "990000000001", pid="sb", x_async="http://127.0.0.1:9/hook", app=hook_app)
    page = client.get("/callbacks", headers=sandbox)
    assert page.headers["X-Sandbox"] == "true"
    assert [(c["nob"], c["event"], c["status"]) for c in page.json["callbacks"]] == [
        (data["nob"], "created", "pending")
    ]
    assert data["nob"] not in {c["nob"] for c in listing(client, partner_headers)["callbacks"]}
    live_event = listing(client, partner_headers)["callbacks"][0]["event_id"]
    assert client.post(f"/callbacks/{live_event}/resend", headers=sandbox).status_code == 404
    sandbox_event = page.json["callbacks"][0]["event_id"]
    assert client.post(f"/callbacks/{sandbox_event}/resend", headers=partner_headers).status_code == 404


def test_credentials_never_show_in_the_log(hooked, partner_headers, run_sql):
    _, client, _, _ = hooked
    run_sql("update webhook_delivery set url = 'https://user:secret@hooks.example/cb?x=1'")
    urls = {c["url"] for c in listing(client, partner_headers)["callbacks"]}
    assert urls == {"https://hooks.example/cb?x=1"}


def test_a_delivery_refused_later_is_failed_with_its_reason(
    make_app, partner_headers, seed_bills, pay, run_sql, canary, cli
):
    """A name that resolves to an address the service does not call by the time the callback
    is sent (production: no private networks): the payment was taken (here by an app that
    allowed private networks then, as a name that resolved elsewhere at payment time would
    be), its delivery is refused when sent, shown failed with the reason in the log and to
    operators, and an operator can send exactly that event again."""
    port, hits = canary
    permissive = make_app(WEBHOOK_ALLOW_PRIVATE_NETWORKS=True)
    guarded = make_app(WEBHOOK_ALLOW_PRIVATE_NETWORKS=False)
    seed_bills.simple(CID, ["202001"])
    data = pay(partner_headers, CID, pid="p-r", x_async=f"http://localhost:{port}/hook", app=permissive)
    assert deliver_pending(guarded, run_sql) == ["refused"]
    assert hits() == 0
    (entry,) = listing(guarded.test_client(), partner_headers)["callbacks"]
    assert (entry["status"], entry["last_result"], entry["attempts"]) == ("failed", "refused", 1)
    assert listing(guarded.test_client(), partner_headers, status="failed")["callbacks"] == [entry]
    ((reason, detail, action),) = run_sql(
        "select reason, detail, action from payments_needing_attention where nob = %s", (data["nob"],)
    )
    assert reason == "webhook failed" and "refused: " in detail and "loopback" in detail
    assert action == f"flask --app wsgi webhook resend {data['nob']} --event {entry['event_id']}"
    res = cli("webhook", "resend", data["nob"], "--event", entry["event_id"])
    assert res.exit_code == 0 and entry["event_id"] in res.output, res.output
    assert run_sql("select count(*) from webhook_delivery where event_id = %s", (entry["event_id"],)) == [
        (2,)
    ]
    bad = cli("webhook", "resend", data["nob"], "--event", "nope")
    assert bad.exit_code != 0 and "is not an event id" in bad.output
    unknown = cli("webhook", "resend", data["nob"], "--event", str(uuid.uuid4()))
    assert unknown.exit_code != 0 and "has no callback with event id" in unknown.output
