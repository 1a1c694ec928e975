"""Sandbox and live never see each other (contract 14.1), in the style of the cross-partner
drills (tests/peti/test_security_drills.py): every protected route, with partner A's
sandbox token on A's live identifiers and A's live token on A's sandbox identifiers,
answers as for something that does not exist (404; /audit: none of the other side's rows)
and changes nothing; and the same requests with the right token succeed."""

from __future__ import annotations

import pytest

from tests import world as world_module
from tests.factories import issue, run_posting
from tests.peti.test_security_drills import PROTECTED, protected_requests, send, today
from tests.world import A

SANDBOX_CID = "990000000001"


@pytest.fixture
def worlds(app, keys, client):
    """A's live world (the drills' world) and A's sandbox payments: one accepted, one in
    progress, one open inquiry."""
    w = world_module.build(app, keys["ES256"]["private"], pool=5)
    headers = {"Authorization": f"Bearer {issue(app, keys['ES256']['private'], A, sandbox=True)}"}

    def sandbox_payment(cid: str, pid: str, post: bool, hook: bool = False):
        shown = client.get(f"/tagihan/{cid}", headers=headers)
        bills = shown.json["tagihan"]
        body = {
            "inq": shown.headers["X-Cross-Site"],
            "pid": pid,
            "mer": "1",
            "per": [int(b["periode"]) for b in bills],
            "amo": sum(b["biaya"]["jumlah"] for b in bills),
        }
        hook_headers = {"X-Async": "http://127.0.0.1:9/hook"} if hook else {}
        res = client.post(f"/tagihan/{cid}", json=body, headers={**headers, **hook_headers})
        assert res.status_code == 202, res.json
        if post:
            (payment_id,) = w.run_sql("select id from payment where nob = %s", (res.json["data"]["nob"],))[0]
            run_posting(app, payment_id)
        return res.json["data"]

    accepted = sandbox_payment(SANDBOX_CID, "sb-accepted", post=True, hook=True)
    created = sandbox_payment("990000000006", "sb-created", post=False)
    open_inquiry = client.get("/tagihan/990000000002", headers=headers)
    (event_id,) = w.run_sql(
        "select d.event_id::text from webhook_delivery d join payment p on p.id = d.payment_id"
        " where p.nob = %s and d.event = 'created'",
        (accepted["nob"],),
    )[0]
    return w, headers, {"accepted": accepted, "created": created, "inq": open_inquiry, "event_id": event_id}


def sandbox_requests(sb: dict) -> dict[tuple[str, str], dict]:
    """One request per protected operation with A's sandbox identifiers (``protected_requests``
    with A's live ones)."""
    accepted, inq = sb["accepted"], sb["inq"]
    bill = inq.json["tagihan"][0]
    return {
        ("/tagihan/{cid}", "get"): {"method": "GET", "path": f"/tagihan/{SANDBOX_CID}"},
        ("/tagihan/{cid}", "post"): {
            "method": "POST",
            "path": "/tagihan/990000000002",
            "json": {
                "inq": inq.headers["X-Cross-Site"],
                "pid": "cross",
                "amo": bill["biaya"]["jumlah"],
                "mer": "1",
                "per": [int(bill["periode"])],
            },
        },
        ("/tagihan/{cid}", "delete"): {
            "method": "DELETE",
            "path": f"/tagihan/{accepted['cid']}",
            "query_string": {"pid": accepted["pid"], "pat": accepted["pat"]},
        },
        ("/status/{cid}", "get"): {
            "method": "GET",
            "path": f"/status/{accepted['cid']}",
            "query_string": {"nob": accepted["nob"]},
        },
        ("/audit", "get"): {"method": "GET", "path": "/audit", "query_string": {"tgl": today()}},
        ("/sandbox/reset", "post"): {"method": "POST", "path": "/sandbox/reset"},
        ("/callbacks", "get"): {"method": "GET", "path": "/callbacks"},
        ("/callbacks/{event_id}/resend", "post"): {
            "method": "POST",
            "path": f"/callbacks/{sb['event_id']}/resend",
        },
    }


def snapshot(w) -> list:
    """Every payment, inquiry, bill and callback as stored: nothing may change across the matrix."""
    return [
        w.run_sql("select nob, status, reversed_at, sandbox from payment order by nob"),
        w.run_sql("select token, sandbox from inquiry order by token"),
        w.run_sql("select bill_no, paid_by from bill order by bill_no"),
        w.run_sql("select event_id::text, count(*) from webhook_delivery group by 1 order by 1"),
    ]


def test_every_operation_is_in_the_matrix(worlds):
    w, _, sb = worlds
    assert sorted(sandbox_requests(sb)) == PROTECTED == sorted(protected_requests(w))


def test_a_sandbox_token_never_sees_or_changes_live_data(worlds, client):
    w, sandbox_headers, sb = worlds
    live = [v for p in w.own(A) for v in (p.nob, p.pat, p.inq)]
    requests = protected_requests(w)
    # A's live inquiry token for a live customer, with the amounts it showed.
    cid = w.fresh_customer()
    shown = client.get(f"/tagihan/{cid}", headers=w.headers[A])
    bills = shown.json["tagihan"]
    requests[("/tagihan/{cid}", "post")] = {
        "method": "POST",
        "path": f"/tagihan/{cid}",
        "json": {
            "inq": shown.headers["X-Cross-Site"],
            "pid": "cross",
            "mer": "1",
            "per": [int(b["periode"]) for b in bills],
            "amo": sum(b["biaya"]["jumlah"] for b in bills),
        },
    }
    # A live callback of A: its event id.
    hooked_cid = w.fresh_customer()
    shown_hooked = client.get(f"/tagihan/{hooked_cid}", headers=w.headers[A])
    hooked_bills = shown_hooked.json["tagihan"]
    hooked = client.post(
        f"/tagihan/{hooked_cid}",
        json={
            "inq": shown_hooked.headers["X-Cross-Site"],
            "pid": "hooked",
            "mer": "1",
            "per": [int(b["periode"]) for b in hooked_bills],
            "amo": sum(b["biaya"]["jumlah"] for b in hooked_bills),
        },
        headers={**w.headers[A], "X-Async": "http://127.0.0.1:9/hook"},
    )
    assert hooked.status_code == 202
    live.append(hooked.json["data"]["nob"])
    ((live_event,),) = w.run_sql(
        "select d.event_id::text from webhook_delivery d join payment p on p.id = d.payment_id where p.pid = 'hooked'"
    )
    requests[("/callbacks/{event_id}/resend", "post")] = {
        "method": "POST",
        "path": f"/callbacks/{live_event}/resend",
    }
    before = snapshot(w)
    for label, spec in sorted(requests.items()):
        if label == ("/sandbox/reset", "post"):
            continue  # its own test below: it empties the sandbox, never live rows
        res = send(client, spec, sandbox_headers)
        assert res.headers["X-Sandbox"] == "true", label
        text = res.get_data(as_text=True)
        assert not any(v in text for v in live), label
        if label == ("/audit", "get"):
            assert res.status_code == 200 and {r["nob"] for r in res.json["data"]} == {sb["accepted"]["nob"]}
        elif label == ("/callbacks", "get"):
            assert res.status_code == 200 and {c["nob"] for c in res.json["callbacks"]} == {
                sb["accepted"]["nob"]
            }
        else:
            assert res.status_code == 404 and set(res.json) == {"error", "message"}, (label, res.json)
    assert snapshot(w) == before
    # Control: A's live token opens the same live identifiers.
    assert send(client, requests[("/status/{cid}", "get")], w.headers[A]).status_code == 202
    assert send(client, requests[("/tagihan/{cid}", "post")], w.headers[A]).status_code == 202


def test_a_live_token_never_sees_or_changes_sandbox_data(worlds, client):
    w, sandbox_headers, sb = worlds
    mine = [sb[k][f] for k in ("accepted", "created") for f in ("nob", "pat", "inq")]
    before = snapshot(w)
    for label, spec in sorted(sandbox_requests(sb).items()):
        res = send(client, spec, w.headers[A])
        assert "X-Sandbox" not in res.headers, label
        assert not any(v in res.get_data(as_text=True) for v in mine), label
        if label == ("/audit", "get"):
            assert res.status_code == 200 and res.json["data"], label  # A's live rows only
        elif label == ("/callbacks", "get"):
            assert res.status_code == 200 and res.json["callbacks"] == [], label  # A has none live
        else:
            assert res.status_code == 404 and set(res.json) == {"error", "message"}, (label, res.json)
    assert snapshot(w) == before
    # Control: A's sandbox token opens the same sandbox identifiers.
    status = sandbox_requests(sb)[("/status/{cid}", "get")]
    assert send(client, status, sandbox_headers).status_code == 202
    assert send(client, sandbox_requests(sb)[("/tagihan/{cid}", "post")], sandbox_headers).status_code == 202


def test_reset_by_the_sandbox_leaves_every_live_row(worlds, client):
    w, sandbox_headers, _ = worlds
    live = w.run_sql("select nob, status, reversed_at from payment where not sandbox order by nob")
    bills = w.run_sql("select bill_no, paid_by from bill order by bill_no")
    assert client.post("/sandbox/reset", headers=sandbox_headers).status_code == 204
    assert w.run_sql("select count(*) from payment where sandbox") == [(0,)]
    assert w.run_sql("select nob, status, reversed_at from payment where not sandbox order by nob") == live
    assert w.run_sql("select bill_no, paid_by from bill order by bill_no") == bills
