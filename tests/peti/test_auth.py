"""Partner tokens (pdam/peti/auth.py, contract section 1): every bad token is 401, a
deactivated partner 403."""

from __future__ import annotations

import datetime as dt

import pytest

from pdam.core import errors
from tests.factories import claims, hs256_with_public_key, record_jti, sign, unsigned_token

PROTECTED = "/tagihan/010101010101"


def now_ts() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp())


@pytest.fixture
def known(run_sql, add_partner):
    """Record a jti the way the CLI does, so only the claim under test differs."""
    add_partner("00", "BANK1")
    return lambda c: record_jti(run_sql, c)


def get(client, token):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.get(PROTECTED, headers=headers)


def assert_401(res):
    assert res.status_code == 401, res.json
    assert res.json["error"] == 401
    assert res.json["message"]


def test_valid_token_passes_auth(client, partner_headers):
    res = client.get(PROTECTED, headers=partner_headers)
    # Authenticated: the route answers (no customer yet -> 404), not 401.
    assert res.status_code == 404
    assert res.json == {"error": 404, "message": "customer not found"}


def test_missing_header(client):
    assert_401(client.get(PROTECTED))


@pytest.mark.parametrize(
    "value", ["Bearer", "Bearer abc", "Bearer a.b.c", "Basic Zm9vOmJhcg==", "Bearer " + "x" * 40]
)
def test_malformed(client, value):
    assert_401(client.get(PROTECTED, headers={"Authorization": value}))


def test_bad_signature(client, keys, known):
    # A well-formed ES256 token, signed by a key the service does not trust.
    assert_401(get(client, sign(keys, known(claims()), key=keys["other"]["private"])))


def test_alg_none(client, known):
    assert_401(get(client, unsigned_token(known(claims()))))


def test_hs256_signed_with_public_key(client, keys, known):
    assert_401(get(client, hs256_with_public_key(known(claims()), keys["ES256"]["public"])))


def test_algorithm_not_configured(client, keys, known):
    # RS256 is a good algorithm, but this deployment pins ES256.
    assert_401(get(client, sign(keys, known(claims()), alg="RS256")))


def test_expired(client, keys, known):
    assert_401(get(client, sign(keys, known(claims(exp=now_ts() - 1)))))


def test_not_yet_valid(client, keys, known):
    assert_401(get(client, sign(keys, known(claims(nbf=now_ts() + 600)))))


def test_wrong_issuer(client, keys, known):
    assert_401(get(client, sign(keys, known(claims(iss="somebody-else")))))


@pytest.mark.parametrize("claim", ["jti", "exp", "iss", "sub", "iat", "name"])
def test_missing_claim(client, keys, known, claim):
    c = claims()
    known(dict(c))
    c.pop(claim)
    assert_401(get(client, sign(keys, c)))


def test_malformed_jti(client, keys, known):
    assert_401(get(client, sign(keys, claims(jti="NOT-HEX"))))


def test_unrecorded_jti(client, keys, add_partner):
    add_partner("00", "BANK1")
    assert_401(get(client, sign(keys, claims())))


def test_unknown_partner(client, keys, known):
    c = claims()
    known(c)
    assert_401(get(client, sign(keys, {**c, "sub": "77"})))


def test_revoked_also_after_new_app(client, make_app, keys, known, app):
    from pdam.core import tokens
    from pdam.web import runtime

    c = known(claims())
    token = sign(keys, c)
    assert get(client, token).status_code == 404
    with app.app_context(), runtime.transaction() as conn:
        tokens.revoke(conn, c["jti"], "lost laptop", dt.datetime.now(dt.UTC))
    res = get(client, token)
    assert_401(res)
    assert res.json["message"] == "Token has been revoked"
    assert_401(get(make_app().test_client(), token))


def test_deactivated_partner_is_403(client, app, partner_headers):
    from pdam.core import partners
    from pdam.web import runtime

    with app.app_context(), runtime.transaction() as conn:
        partners.set_active(conn, "00", False)
    res = client.get(PROTECTED, headers=partner_headers)
    assert res.status_code == 403
    assert res.json == {"error": 403, "message": "Partner is deactivated"}


def test_rs256_by_configuration(make_app, keys, add_partner, run_sql):
    app = make_app(PDAM_JWT_ALGORITHM="RS256", PDAM_JWT_PUBLIC_KEY=keys["RS256"]["public"])
    add_partner("00", "BANK1")
    c = claims()
    run_sql(
        "insert into api_token (jti, partner_code, issued_at, expires_at)"
        " values (%s, '00', now(), now() + interval '1 day')",
        (c["jti"],),
    )
    client = app.test_client()
    assert get(client, sign(keys, c, alg="RS256")).status_code == 404
    assert_401(get(client, sign(keys, c, alg="ES256")))


def test_health_needs_no_token(client):
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("public_key", ["RS256 key", "not a PEM key", ""])
def test_a_missing_or_unusable_key_is_503_for_every_token(make_app, keys, known, public_key, caplog):
    """The key is parsed once at start-up. One that is missing or not an ES256 key is a
    configuration error of the service: 503 with a clear message, never 401 or 500."""
    key = {"RS256 key": keys["RS256"]["public"], "not a PEM key": "-----BEGIN PUBLIC KEY-----\nxx\n"}.get(
        public_key, ""
    )
    app = make_app(PDAM_JWT_PUBLIC_KEY=key, PDAM_JWT_PUBLIC_KEY_FILE="/nonexistent/public.pem")
    if key:
        assert "not a usable ES256 key" in caplog.text
    c = known(claims())
    for token in (sign(keys, c), sign(keys, c, alg="RS256")):
        res = get(app.test_client(), token)
        assert res.status_code == 503
        assert res.json == {"error": 503, "message": "token verification key is not configured or not usable"}


# -- the verified-claims cache: the signature once per process, the rest every time -------


def cache_of(app):
    return app.extensions["pdam.verified_tokens"]


def test_a_verified_token_is_cached_and_its_expiry_still_checked(client, app, keys, known, monkeypatch):
    from pdam.peti import auth

    token = sign(keys, known(claims(exp=now_ts() + 60)))
    assert get(client, token).status_code == 404
    assert cache_of(app).get(f"Bearer {token}") is not None
    assert get(client, token).status_code == 404  # from the cache
    monkeypatch.setattr(auth, "wall_clock", lambda: now_ts() + 60)
    res = get(client, token)
    assert_401(res)
    assert res.json["message"] == "Token has expired"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_a_cached_token_is_refused_before_its_nbf_and_iat(client, app, keys, known, monkeypatch, claim):
    from pdam.peti import auth

    start = now_ts() - 5
    token = sign(keys, known(claims(**{claim: start, "iat": start})))
    assert get(client, token).status_code == 404
    monkeypatch.setattr(auth, "wall_clock", lambda: start - 1)  # the clock went back
    res = get(client, token)
    assert_401(res)
    assert res.json["message"] == f"Invalid token: The token is not yet valid ({claim})"


def test_a_cached_token_of_a_partner_deactivated_since_is_403(client, app, partner_headers):
    from pdam.core import partners
    from pdam.web import runtime

    assert client.get(PROTECTED, headers=partner_headers).status_code == 404
    with app.app_context(), runtime.transaction() as conn:
        partners.set_active(conn, "00", False)
    res = client.get(PROTECTED, headers=partner_headers)
    assert res.status_code == 403
    assert res.json == {"error": 403, "message": "Partner is deactivated"}


def test_a_cached_token_whose_record_is_gone_is_401(client, app, keys, known, run_sql):
    c = known(claims())
    token = sign(keys, c)
    assert get(client, token).status_code == 404
    run_sql("delete from api_token where jti = %s", (c["jti"],))
    res = get(client, token)
    assert_401(res)
    assert res.json["message"] == "Unknown token"


def test_a_refused_token_is_not_cached(client, app, keys, known):
    token = sign(keys, known(claims()), key=keys["other"]["private"])
    assert_401(get(client, token))
    assert_401(get(client, token))
    assert len(cache_of(app)) == 0


def test_the_cache_is_bounded_oldest_first():
    from pdam.peti.auth import VerifiedTokens

    cache = VerifiedTokens(2)
    for n in range(3):
        cache.put(f"Bearer {n}", {"n": n})
    assert len(cache) == 2
    assert cache.get("Bearer 0") is None
    assert cache.get("Bearer 2") == {"n": 2}
    assert cache.get(None) is None
    empty = VerifiedTokens(0)
    empty.put("Bearer 0", {})
    assert len(empty) == 0


# -- every refusal's exact answer (pinned: the contract's clients may match on them) ----------


def _token(keys, c=None, **kw) -> str:
    return "Bearer " + sign(keys, c if c is not None else claims(), **kw)


REFUSALS = {
    # header
    "no header": (lambda k, kn: None, "Missing Authorization Bearer token"),
    "empty": (lambda k, kn: "", "Missing Authorization Bearer token"),
    "basic": (lambda k, kn: "Basic Zm9vOmJhcg==", "Missing Authorization Bearer token"),
    "bearer alone": (lambda k, kn: "Bearer", "Invalid token: Bad Authorization header. Expected 'Authorization: Bearer <JWT>'"),
    "bearer two words": (lambda k, kn: "Bearer a b", "Invalid token: Bad Authorization header. Expected 'Authorization: Bearer <JWT>'"),
    "two bearer fields": (lambda k, kn: "Bearer a, Bearer b", "Missing Authorization Bearer token"),
    "not a jwt": (lambda k, kn: "Bearer abc", "Invalid token: Not enough segments"),
    "three dots": (lambda k, kn: "Bearer a.b.c", "Invalid token: Invalid header padding"),
    # signature and algorithm
    "other key": (lambda k, kn: _token(k, kn(claims()), key=k["other"]["private"]), "Invalid token: Signature verification failed"),
    "alg none": (lambda k, kn: "Bearer " + unsigned_token(kn(claims())), "Invalid token: The specified alg value is not allowed"),
    "hs256 public key": (lambda k, kn: "Bearer " + hs256_with_public_key(kn(claims()), k["ES256"]["public"]), "Invalid token: The specified alg value is not allowed"),
    "rs256": (lambda k, kn: _token(k, kn(claims()), alg="RS256"), "Invalid token: The specified alg value is not allowed"),
    # registered claims
    "expired": (lambda k, kn: _token(k, kn(claims(exp=now_ts() - 1))), "Token has expired"),
    "nbf future": (lambda k, kn: _token(k, kn(claims(nbf=now_ts() + 600))), "Invalid token: The token is not yet valid (nbf)"),
    "iat future": (lambda k, kn: _token(k, kn(claims(iat=now_ts() + 600))), "Invalid token: The token is not yet valid (iat)"),
    "wrong issuer": (lambda k, kn: _token(k, kn(claims(iss="somebody-else"))), "Invalid token: Invalid issuer"),
    "no issuer": (lambda k, kn: _token(k, kn(claims(iss=None))), 'Invalid token: Token is missing the "iss" claim'),
    "exp not a number": (lambda k, kn: _token(k, kn(claims(exp="soon"))), "Invalid token: Expiration Time claim (exp) must be an integer."),
    # the contract's claims
    "no sub": (lambda k, kn: _token(k, claims(sub=None)), "Invalid token: Missing claim: sub"),
    "refresh type": (lambda k, kn: _token(k, kn(claims(type="refresh"))), "Invalid token: Only non-refresh tokens are allowed"),
    "no exp": (lambda k, kn: _token(k, kn(claims(exp=None))), "Missing claim: exp"),
    "no iat": (lambda k, kn: _token(k, kn(claims(iat=None))), "Missing claim: iat"),
    "no jti": (lambda k, kn: _token(k, claims(jti=None)), "Missing claim: jti"),
    "no name": (lambda k, kn: _token(k, kn(claims(name=None))), "Missing claim: name"),
    "bad jti": (lambda k, kn: _token(k, claims(jti="XYZ")), "Invalid claim: jti"),
    "bad sub": (lambda k, kn: _token(k, claims(sub="7")), "Invalid claim: sub"),
    # the database's word
    "unknown partner": (lambda k, kn: _token(k, claims(sub="55")), "Unknown partner"),
    "unknown token": (lambda k, kn: _token(k, claims()), "Unknown token"),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS)
def test_every_refusal_answers_exactly(client, keys, known, case):
    header, message = REFUSALS[case]
    value = header(keys, known)
    res = client.get(PROTECTED, headers={} if value is None else {"Authorization": value})
    assert (res.status_code, res.json) == (401, {"error": 401, "message": message})


def test_a_revoked_token_answers_exactly(client, app, keys, known):
    from pdam.core import tokens
    from pdam.web import runtime

    token = sign(keys, known(claims()))
    assert get(client, token).status_code == 404
    with app.app_context(), runtime.transaction() as conn:
        tokens.revoke(conn, token, "drill", dt.datetime.now(dt.UTC))
    for _ in range(2):  # read from the database on every request, the cached claims too
        res = get(client, token)
        assert (res.status_code, res.json) == (401, {"error": 401, "message": "Token has been revoked"})


def test_authenticate_takes_its_inputs_and_returns_the_cores_partner(app, keys, known):
    """``authenticate`` reads no request, configuration or clock of its own: the header, the
    time, the key's state, the cache, the connection and the rate are its arguments."""
    from pdam.core.records import Partner
    from pdam.infra import logs
    from pdam.peti.auth import VerifiedTokens, authenticate
    from pdam.web import runtime
    from pdam.web.errors import Unauthorized

    c = known(claims())
    header = "Bearer " + sign(keys, c)
    cache = VerifiedTokens(4)
    # A request's log context, as the request log gives each request (authenticate names
    # the partner in it).
    with app.app_context(), logs.bound(request_id="test"):
        args = {
            "key_ready": True,
            "cache": cache,
            "conn": runtime.connection(),
            "rate": 0,
            "address": "192.0.2.1",
        }
        partner = authenticate(header, now_ts(), **args)
        assert isinstance(partner, Partner)
        assert (partner.code, partner.name, partner.active) == ("00", "BANK1", True)
        assert cache.get(header) is not None
        with pytest.raises(Unauthorized, match="Token has expired"):  # the time given, not the machine's
            authenticate(header, c["exp"], **args)
        with pytest.raises(errors.Unavailable):
            authenticate(header, now_ts(), **{**args, "key_ready": False})
