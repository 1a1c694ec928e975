"""Per-partner rate limit (contract section 13): PARTNER_RATE_LIMIT requests a second,
bursts as large, state in PostgreSQL so every process shares it."""

from __future__ import annotations

import multiprocessing
import time

import pytest

CID = "010101010101"


def _flood(config: dict, headers: dict, seconds: float, out) -> None:
    """One process of its own (its own app, its own connections) sending as fast as it can."""
    from pdam import create_app

    client = create_app(config).test_client()
    statuses, retry_after = [], set()
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        res = client.get(f"/status/{CID}?nob=002008260001", headers=headers)
        statuses.append(res.status_code)
        if res.status_code == 429:
            retry_after.add(res.headers["Retry-After"])
            assert res.json["error"] == 429 and "rate limit" in res.json["message"]
    out.put((statuses, retry_after))


def test_a_flood_from_several_processes_is_limited_and_another_partner_is_not(
    make_app, app_config, partner_headers, auth_for
):
    rate, seconds, processes = 10, 2.0, 3
    config = {**app_config, "PARTNER_RATE_LIMIT": rate}
    other = auth_for("96", "BANK2")
    client = make_app(PARTNER_RATE_LIMIT=rate).test_client()
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    flooders = [
        ctx.Process(target=_flood, args=(config, partner_headers, seconds, out)) for _ in range(processes)
    ]
    started = time.monotonic()
    for p in flooders:
        p.start()
    others = []
    while time.monotonic() - started < seconds:  # partner 96 at half its limit meanwhile
        others.append(client.get(f"/status/{CID}?nob=962008260001", headers=other).status_code)
        time.sleep(2 / rate)
    results = [out.get(timeout=60) for _ in flooders]
    for p in flooders:
        p.join(timeout=30)
    elapsed = time.monotonic() - started
    statuses = [s for st, _ in results for s in st]
    allowed = sum(1 for s in statuses if s != 429)
    assert set(statuses) <= {404, 429}
    assert len(statuses) > 3 * rate * seconds  # a real flood: far over the limit
    # The burst, then the rate: never more across the three processes together.
    assert rate <= allowed <= rate + rate * elapsed + 2
    assert {ra for _, ras in results for ra in ras} == {"1"}  # whole seconds, at least 1
    assert others and 429 not in others and set(others) == {404}


def test_retry_after_is_when_a_token_is_back(make_app, partner_headers):
    client = make_app(PARTNER_RATE_LIMIT=1).test_client()
    url = f"/status/{CID}?nob=002008260001"
    assert client.get(url, headers=partner_headers).status_code == 404  # the one token
    limited = client.get(url, headers=partner_headers)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    time.sleep(1.05)
    assert client.get(url, headers=partner_headers).status_code == 404


def test_a_failed_request_keeps_its_token_spent(make_app, partner_headers, run_sql):
    """The token is taken in a statement of its own: a request that fails later (here a
    400) does not give it back, and the bucket row is not left locked."""
    client = make_app(PARTNER_RATE_LIMIT=2).test_client()
    assert client.post(f"/tagihan/{CID}", data="not json", headers=partner_headers).status_code == 400
    assert client.post(f"/tagihan/{CID}", data="not json", headers=partner_headers).status_code == 400
    assert client.post(f"/tagihan/{CID}", data="not json", headers=partner_headers).status_code == 429
    [(tokens,)] = run_sql("select tokens from rate_bucket where partner_code = '00' for update nowait")
    assert tokens < 1


@pytest.mark.parametrize("path", ["/health", "/health/live", "/openapi.json", "/docs"])
def test_unauthenticated_routes_are_never_limited(make_app, path):
    client = make_app(PARTNER_RATE_LIMIT=1).test_client()
    assert {client.get(path).status_code for _ in range(5)} == {200}


def test_zero_turns_the_limit_off(make_app, partner_headers, run_sql):
    client = make_app(PARTNER_RATE_LIMIT=0).test_client()
    assert {
        client.get(f"/status/{CID}?nob=002008260001", headers=partner_headers).status_code for _ in range(20)
    } == {404}
    assert run_sql("select count(*) from rate_bucket") == [(0,)]
