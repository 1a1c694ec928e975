"""Section 13 on SNAP: a partner over PARTNER_RATE_LIMIT gets 429xx00 with Retry-After,
counted together with its PeTi requests; another partner is not slowed."""

from __future__ import annotations

from .conftest import Bank


def test_over_the_limit_is_429_with_retry_after(make_app, make_bank, bills, issue_token):
    app = make_app(PARTNER_RATE_LIMIT=3)
    bank = make_bank(app_=app)
    other = make_bank("96", "bank-two", "55555", app_=app)
    token = bank.token  # 1
    codes = [bank.inquiry(ref=f"r{i}", headers={"token": token}).json["responseCode"] for i in range(3)]
    assert codes[:2] == ["2002400", "2002400"] and codes[2] == "4292400"  # the burst is 3
    res = bank.status(ref="x", headers={"token": token})
    assert (res.status_code, res.json["responseCode"], res.json["responseMessage"]) == (
        429,
        "4292600",
        "Too Many Requests",
    )
    assert res.headers["Retry-After"] == "1"
    assert res.json["virtualAccountData"]["paymentFlagStatus"] == "01"
    token_res = bank.request_token()
    assert (token_res.status_code, token_res.json["responseCode"]) == (429, "4297300")
    # Its PeTi requests share the bucket.
    peti = app.test_client().get(
        "/status/010101010101?nob=002008260001", headers={"Authorization": f"Bearer {issue_token('00')}"}
    )
    assert peti.status_code == 429
    # Another partner is not slowed.
    assert other.request_token().json["responseCode"] == "2007300"


def test_a_limited_request_is_not_recorded_for_its_external_id(make_app, make_bank, bills):
    import time

    app = make_app(PARTNER_RATE_LIMIT=2)
    bank = make_bank(app_=app)
    token = bank.token
    assert bank.inquiry(headers={"token": token}).status_code == 200
    limited = bank.inquiry(ref="again", headers={"token": token, "X-EXTERNAL-ID": "e-429"})
    assert limited.json["responseCode"] == "4292400"
    time.sleep(1.1)
    res = bank.inquiry(ref="again", headers={"token": token, "X-EXTERNAL-ID": "e-429"})
    assert res.json["responseCode"] == "2002400"
    assert isinstance(bank, Bank)
