"""Access tokens live in PostgreSQL: valid in every web process and after a restart, for
their own client only, hashed at rest."""

from __future__ import annotations

import hashlib

from .conftest import Bank


def test_token_from_one_app_works_in_another(make_app, bank, bills):
    token = bank.token
    other_process = make_app()  # its own pools: what another gunicorn worker sees
    res = Bank(other_process, bank.client_id, bank.key, bank.secret, "00").inquiry(headers={"token": token})
    assert res.json["responseCode"] == "2002400", res.json


def test_token_survives_a_restart(make_app, app, bank, bills):
    token = bank.token
    app.extensions["pdam.runtime"].dispose()  # the old process's connections are gone
    restarted = make_app()
    res = Bank(restarted, bank.client_id, bank.key, bank.secret, "00").inquiry(headers={"token": token})
    assert res.json["responseCode"] == "2002400", res.json


def test_tokens_are_stored_hashed(bank, run_sql):
    token = bank.token
    rows = run_sql("select token_hash, client_id, expires_at - issued_at from snap_access_token")
    assert [(h, c) for h, c, _ in rows] == [(hashlib.sha256(token.encode()).hexdigest(), "bank-one")]
    assert rows[0][2].total_seconds() == 900


def test_several_tokens_are_valid_at_once(bank, bills):
    first = bank.token
    bank._token = None
    second = bank.token
    assert first != second
    assert bank.inquiry(ref="a", headers={"token": first}).json["responseCode"] == "2002400"
    assert bank.inquiry(ref="b", headers={"token": second}).json["responseCode"] == "2002400"


def test_token_lifetime_is_configurable(make_app, make_bank):
    app = make_app(SNAP_TOKEN_TTL_SECONDS=60)
    bank = make_bank(app_=app)
    assert bank.request_token().json["expiresIn"] == "60"
