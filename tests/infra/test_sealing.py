"""Secrets sealed at rest: the sealer, the stored columns, sealing at upgrade, rotation, and the
start-up check of web, worker and commands."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys

import psycopg
import pytest
from werkzeug import Response

from pdam.infra import migrations, sealing
from tests.factories import CID, ROOT, SEALER, SECRET_KEYS
from tests.fixtures.databases import upgrade_before

OTHER_KEY = sealing.generate_key()
SEALED = r"pdam1\.[0-9a-f]{8}\.[A-Za-z0-9_=-]+"


# -- the sealer ------------------------------------------------------------------------------


def test_seal_then_open_under_the_newest_key_and_any_older():
    old, new = sealing.generate_key(), sealing.generate_key()
    before = sealing.Sealer([old])
    sealed_old = before.seal("webhook secret")
    after = sealing.Sealer([new, old])
    sealed_new = after.seal("webhook secret")
    assert sealed_new.startswith(f"pdam1.{sealing.key_id(new)}.")
    assert sealed_old.startswith(f"pdam1.{sealing.key_id(old)}.")
    assert "webhook secret" not in sealed_new
    assert after.open(sealed_old) == after.open(sealed_new) == "webhook secret"
    assert sealed_new != after.seal("webhook secret")  # a fresh IV each time


def test_open_never_returns_what_was_not_sealed_by_these_keys():
    sealer = sealing.Sealer([SECRET_KEYS])
    other = sealing.Sealer([OTHER_KEY])
    with pytest.raises(sealing.SealingError, match="not sealed"):
        sealer.open("a plaintext secret of 32 characters!")
    with pytest.raises(sealing.SealingError, match=f"key id {sealing.key_id(OTHER_KEY)}, which SECRET_KEYS"):
        sealer.open(other.seal("x"))
    sealed = sealer.seal("x")
    prefix, kid, token = sealed.split(".")
    altered = f"{prefix}.{kid}.{token[:-6]}{'A' if token[-6] != 'A' else 'B'}{token[-5:]}"
    with pytest.raises(sealing.SealingError, match="does not open"):
        sealer.open(altered)


def test_a_value_opened_again_is_not_decrypted_again_and_a_refusal_is_not_kept(monkeypatch):
    sealer = sealing.Sealer([SECRET_KEYS])
    sealed = sealer.seal("webhook secret")
    decrypted = []
    fernet = sealer._fernets[sealer.newest]
    real = fernet.decrypt
    monkeypatch.setattr(fernet, "decrypt", lambda token: decrypted.append(token) or real(token))
    assert [sealer.open(sealed) for _ in range(3)] == ["webhook secret"] * 3
    assert len(decrypted) == 1
    altered = sealed[:-2] + ("AA" if sealed[-2:] != "AA" else "BB")
    for _ in range(2):  # tried each time: a refusal is never an answer kept
        with pytest.raises(sealing.SealingError, match="does not open"):
            sealer.open(altered)
    assert len(decrypted) == 3


@pytest.mark.parametrize(
    "settings, message",
    [
        (
            {"SECRET_KEYS": None, "SECRET_KEYS_FILE": "/nonexistent/secret-keys"},
            "no SECRET_KEYS and no key file",
        ),
        ({"SECRET_KEYS": "not-a-key"}, "32 bytes in URL-safe base64"),
        ({"SECRET_KEYS": " , "}, "holds no key"),
    ],
)
def test_missing_or_malformed_keys_are_refused(settings, message):
    with pytest.raises(sealing.SealingError, match=message):
        sealing.from_settings(settings)


def test_keys_from_a_file_newest_first(tmp_path):
    old, new = sealing.generate_key(), sealing.generate_key()
    path = tmp_path / "secret-keys"
    path.write_text(f"# newest first\n{new}\n{old}  # the previous one\n")
    sealer = sealing.from_settings({"SECRET_KEYS": None, "SECRET_KEYS_FILE": str(path)})
    assert sealer.key_ids == [sealing.key_id(new), sealing.key_id(old)]
    assert sealing.from_settings({"SECRET_KEYS": f"{new},{old}"}).key_ids == sealer.key_ids
    assert new not in repr(sealer)


# -- what is stored --------------------------------------------------------------------------


def test_every_secret_is_stored_sealed_and_still_works(
    app, cli, partner_headers, pay, example_bill, seed_bills, run_sql, receiver
):
    from tests.factories import deliver_pending

    pay(partner_headers, x_async=receiver.url(), x_async_token="Bearer callback-secret-123")
    seed_bills.simple("777", ["202001"])
    pay(partner_headers, cid="777", pid="evid-2", x_async=receiver.url())  # no token: its Authorization
    (partner_secret,) = run_sql("select webhook_secret from partner where code = '00'")[0]
    rows = run_sql("select callback_token, request_authorization from payment order by id")
    assert rows[1][0] is None
    for value in (partner_secret, rows[0][0], rows[0][1], rows[1][1]):
        assert value and re.fullmatch(SEALED, value), value
    assert "callback-secret-123" not in str(rows) and "Bearer ey" not in str(rows)
    assert deliver_pending(app, run_sql)[0] == "delivered"
    assert receiver.calls[0]["headers"]["Authorization"] == "Bearer callback-secret-123"
    # The operator command prints the secret itself (what the partner verifies with).
    shown = cli("partner", "secret", "00").output.strip()
    assert SEALER.open(partner_secret) == shown and len(shown) == 64


# -- sealing at upgrade ----------------------------------------------------------------------


def test_upgrade_seals_the_plaintext_stored_before(fresh_url, make_app, receiver):
    from tests.factories import deliver_pending, sql_runner

    upgrade_before(fresh_url, "009")  # the schema before secrets were sealed
    run_sql = sql_runner(fresh_url)
    plain = "a" * 64
    run_sql(f"insert into partner (code, name, webhook_secret) values ('00', 'OLD', '{plain}')")
    run_sql(
        "insert into snap_client (client_id, partner_code, public_key, client_secret, service_id)"
        f" values ('bank', '00', '-----BEGIN PUBLIC KEY-----x', '{'b' * 64}', '123')"
    )
    run_sql(
        "insert into inquiry (token, partner_code, customer_id, snapshot, created_at, expires_at)"
        " values (repeat('1', 32), '00', '1', '{}', now(), now() + interval '1 hour')"
    )
    run_sql(
        "insert into payment (partner_code, pid, customer_id, inquiry_token, amount, periods, merchant, pat,"
        " nob, accepted_at, callback_url, callback_token, request_authorization) values ('00', 'p1', '1',"
        f" repeat('1', 32), 1, '{{202001}}', '1', repeat('A', 20), '002001010001', now(), '{receiver.url()}',"
        " 'Bearer old-token', 'Bearer old-jwt')"
    )
    run_sql(
        "insert into webhook_delivery (payment_id, event, url, body, created_at)"
        f" select id, 'created', '{receiver.url()}', '{{}}', now() from payment"
    )

    applied = migrations.upgrade(fresh_url, sealer=SEALER)
    assert "main/009_sealed_secrets.sql" in applied
    assert {
        "sealed 1 stored partner.webhook_secret",
        "sealed 1 stored snap_client.client_secret",
        "sealed 1 stored payment.callback_token",
        "sealed 1 stored payment.request_authorization",
    } <= set(applied)
    stored = run_sql(
        "select p.webhook_secret, c.client_secret, y.callback_token, y.request_authorization"
        " from partner p, snap_client c, payment y"
    )[0]
    assert [SEALER.open(v) for v in stored] == [plain, "b" * 64, "Bearer old-token", "Bearer old-jwt"]
    assert migrations.upgrade(fresh_url, sealer=SEALER) == []  # nothing left in plain text
    checks = run_sql("select conname, convalidated from pg_constraint where conname like '%%_sealed'")
    assert len(checks) == 4 and all(valid for _, valid in checks)
    # Plain text can no longer be written, and the service delivers with what was sealed.
    with pytest.raises(psycopg.errors.CheckViolation):
        run_sql(f"update partner set webhook_secret = '{plain}'")
    app = make_app(DATABASE_URL=fresh_url)
    assert deliver_pending(app, run_sql) == ["delivered"]
    assert receiver.calls[0]["headers"]["Authorization"] == "Bearer old-token"


def test_upgrade_with_a_wrong_key_seals_nothing(fresh_url):
    from tests.factories import sql_runner

    upgrade_before(fresh_url, "009")  # the schema before secrets were sealed
    migrations.upgrade(fresh_url, sealer=SEALER)  # the canary under the tests' key
    # A partner stored in plain text by a process of the previous release, meanwhile.
    run_sql = sql_runner(fresh_url)
    run_sql("alter table partner drop constraint partner_webhook_secret_sealed")
    run_sql(f"insert into partner (code, name, webhook_secret) values ('01', 'LATE', '{'c' * 64}')")
    with pytest.raises(sealing.SealingError, match="cannot open this database's secrets"):
        migrations.upgrade(fresh_url, sealer=sealing.Sealer([OTHER_KEY]))
    assert run_sql("select webhook_secret from partner") == [("c" * 64,)]


# -- rotation --------------------------------------------------------------------------------


def test_rotate_reseals_everything_under_the_newest_key(
    make_app, cli, partner_headers, pay, example_bill, run_sql
):
    pay(partner_headers, x_async="http://127.0.0.1:9/hook", x_async_token="Bearer t")
    old_secret = cli("partner", "secret", "00").output.strip()
    new_keys = f"{OTHER_KEY},{SECRET_KEYS}"
    rotating = make_app(SECRET_KEYS=new_keys).test_cli_runner()
    status = rotating.invoke(args=["secrets", "status"])
    assert f"partner.webhook_secret: {SEALER.newest} 1" in status.output, status.output
    result = rotating.invoke(args=["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    assert "partner.webhook_secret: 1 resealed" in result.output
    assert "payment.callback_token: 1 resealed" in result.output
    new_id = sealing.key_id(OTHER_KEY)
    assert f"every secret is sealed under key id {new_id}" in result.output
    values = run_sql(
        "select webhook_secret from partner union all select callback_token from payment"
        " union all select request_authorization from payment union all select sealed from secret_canary"
    )
    assert values and all(v.startswith(f"pdam1.{new_id}.") for (v,) in values)
    # The old key can go now: the new one alone opens everything; the old one alone nothing.
    only_new = make_app(SECRET_KEYS=OTHER_KEY).test_cli_runner()
    assert only_new.invoke(args=["partner", "secret", "00"]).output.strip() == old_secret
    only_old = make_app(SECRET_KEYS=SECRET_KEYS).test_cli_runner().invoke(args=["partner", "secret", "00"])
    assert only_old.exit_code == 1
    assert f"sealed under key id {new_id}, which SECRET_KEYS does not hold" in only_old.output
    assert rotating.invoke(args=["secrets", "rotate"]).output.count(": 0 resealed") == 4


# -- a wrong or missing key at start ---------------------------------------------------------


def test_a_command_with_a_wrong_or_missing_key_stops_with_the_reason(make_app, tmp_path):
    wrong = make_app(SECRET_KEYS=OTHER_KEY).test_cli_runner().invoke(args=["partner", "list"])
    assert wrong.exit_code == 1
    assert "SECRET_KEYS cannot open this database's secrets" in wrong.output
    assert "Traceback" not in wrong.output
    missing = make_app(SECRET_KEYS=None, SECRET_KEYS_FILE=str(tmp_path / "none")).test_cli_runner()
    result = missing.invoke(args=["partner", "list"])
    assert result.exit_code == 1 and "no SECRET_KEYS and no key file" in result.output


def test_a_request_never_runs_on_a_wrong_key(make_app):
    client = make_app(SECRET_KEYS=OTHER_KEY).test_client()
    res = client.get("/health")
    assert res.status_code == 500
    assert OTHER_KEY not in res.get_data(as_text=True) and SECRET_KEYS not in res.get_data(as_text=True)


def test_the_worker_refuses_to_start_and_is_not_restarted(start_worker, tmp_path):
    log = tmp_path / "worker.log"
    proc = start_worker(log=log, SECRET_KEYS=OTHER_KEY)
    assert proc.wait(timeout=60) == 78
    text = log.read_text()
    assert "SECRET_KEYS cannot open this database's secrets" in text
    assert "not restarting" in text and OTHER_KEY not in text


def test_gunicorn_refuses_to_start_on_a_wrong_key(database_url, tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEYS": OTHER_KEY,
        "PORT": "0",
        "WEB_CONCURRENCY": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "Error: SECRET_KEYS cannot open this database's secrets" in proc.stderr


def test_no_secret_in_logs_metrics_or_answers(
    make_app, cli, partner_headers, pay, example_bill, run_sql, receiver, caplog
):
    from tests.factories import deliver_pending

    app = make_app(METRICS_TOKEN="metrics-token")
    receiver.answer = lambda call: Response("no", 500)  # a failed attempt is logged too
    caplog.set_level(logging.DEBUG)
    pay(partner_headers, x_async=receiver.url(), x_async_token="Bearer callback-secret-456", app=app)
    deliver_pending(app, run_sql)
    secret = cli("partner", "secret", "00").output.strip()
    client = app.test_client()
    metrics = client.get("/metrics", headers={"Authorization": "Bearer metrics-token"})
    status = client.get(f"/status/{CID}?pid=evid-123456", headers=partner_headers)
    assert metrics.status_code == 200 and status.status_code == 201  # posting not run: in progress
    assert receiver.calls[0]["headers"]["Authorization"] == "Bearer callback-secret-456"
    token = partner_headers["Authorization"].split()[1]
    logged = " ".join(repr(record.__dict__) for record in caplog.records)  # messages and extras
    assert "webhook attempt" in logged and "request" in logged
    seen = logged + metrics.get_data(as_text=True) + status.get_data(as_text=True)
    for value in ("callback-secret-456", secret, token, SECRET_KEYS):
        assert value not in seen


def test_a_database_without_a_canary_is_a_clear_error_through_the_port(fresh_url):
    """No canary table yet (a database never upgraded): the port throws the driver's
    ``UndefinedTable`` into the check's plan, which says what to do; a canary sealed under
    another key is refused."""
    import sqlalchemy as sa

    from pdam.infra import settings

    engine = sa.create_engine(settings.sqlalchemy_url(fresh_url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            with pytest.raises(sealing.SealingError, match="no secret canary yet"):
                sealing.verify(conn, SEALER)
            conn.rollback()
        migrations.upgrade(fresh_url, sealer=SEALER)
        with engine.connect() as conn:
            sealing.verify(conn, SEALER)  # the canary under the tests' key
            other = sealing.Sealer(sealing.parse_keys(sealing.generate_key()))
            with pytest.raises(sealing.SealingError, match="cannot open"):
                sealing.verify(conn, other)
    finally:
        engine.dispose()
