"""``demo seed`` and ``demo reset`` (pdam/cli/demo.py)."""

from __future__ import annotations

from tests.factories import deliver_pending


def test_demo_seed_is_idempotent(cli, run_sql):
    first = cli("demo", "seed", "--port", "5055")
    assert first.exit_code == 0, first.output
    assert "demo data created" in first.output
    assert 'curl -s -H "Authorization: Bearer ey' in first.output and ":5055/tagihan/" in first.output
    second = cli("demo", "seed")
    assert second.exit_code == 0 and "demo data already there" in second.output
    assert run_sql("select count(*) from bill") == [(4,)]


def _token(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("ey"))


def test_demo_seed_keeps_its_token_and_prints_it_again(cli, tmp_path):
    kept = tmp_path / "demo-token"
    first = cli("demo", "seed", "--token-file", str(kept))
    assert first.exit_code == 0, first.output
    token = _token(first.output)
    assert kept.read_text().strip() == token and kept.stat().st_mode & 0o777 == 0o600
    again = cli("demo", "seed", "--token-file", str(kept))
    assert again.exit_code == 0, again.output
    assert "demo data already there" in again.output and f"kept in {kept}" in again.output
    assert _token(again.output) == token


def test_demo_seed_mints_a_new_token_when_the_kept_one_is_revoked_or_not_a_token(cli, tmp_path):
    kept = tmp_path / "demo-token"
    token = _token(cli("demo", "seed", "--token-file", str(kept)).output)
    assert cli("token", "revoke", token, "--reason", "test").exit_code == 0
    fresh = cli("demo", "seed", "--token-file", str(kept))
    assert fresh.exit_code == 0 and "kept in" not in fresh.output
    assert _token(fresh.output) != token and kept.read_text().strip() == _token(fresh.output)
    kept.write_text("not a token\n")
    other = cli("demo", "seed", "--token-file", str(kept))
    assert other.exit_code == 0 and "kept in" not in other.output
    assert kept.read_text().strip() == _token(other.output)


def _demo_headers(cli) -> dict:
    return {"Authorization": f"Bearer {_token(cli('demo', 'seed').output)}"}


def test_demo_reset_deletes_the_demo_payments_and_unpays_their_bills(
    app, cli, pay, post_queued, receiver, run_sql
):
    headers = _demo_headers(cli)
    first = pay(headers, "010101010101", [202005, 202006], "walk-1", x_async=receiver.url())
    post_queued()
    deliver_pending(app, run_sql)
    assert run_sql("select status from payment") == [("accepted",)]
    assert run_sql("select count(*) from bill where paid_by is not null") == [(2,)]

    out = cli("demo", "reset")
    assert out.exit_code == 0, out.output
    assert "1 payments of partner 00 deleted, 2 bills unpaid again" in out.output
    for table in ("payment", "payment_period", "webhook_delivery", "webhook_attempt", "inquiry"):
        assert run_sql(f"select count(*) from {table}") == [(0,)], table
    assert run_sql("select count(*) from bill where paid_by is not null or paid_at is not null") == [(0,)]
    assert run_sql(
        "select status, sum(n)::int from payment_status_count group by status order by status"
    ) == [
        ("accepted", 0),
        ("changed", 0),
        ("created", 0),
        ("rejected", 0),
    ]
    # The walk-through starts over: the same periods are shown and paid again, a new receipt number.
    again = pay(headers, "010101010101", [202005, 202006], "walk-1")
    assert again["nob"] > first["nob"]  # receipt numbers are never given twice
    assert run_sql("select count(*) from payment") == [(1,)]


def test_demo_reset_is_refused_while_a_payment_is_being_posted(cli, pay, run_sql):
    headers = _demo_headers(cli)
    nob = pay(headers, "010101010101", [202005, 202006], "walk-2")["nob"]
    out = cli("demo", "reset")
    assert out.exit_code == 1 and "still being posted" in out.output and nob in out.output
    assert run_sql("select count(*) from payment") == [(1,)]


def test_demo_reset_touches_no_partner_but_the_demo_one(cli, run_sql):
    assert cli("partner", "add", "00", "BANK1").exit_code == 0
    out = cli("demo", "reset")
    assert out.exit_code == 1 and "not the demo partner" in out.output
    run_sql("delete from partner")  # no partner 00 at all is refused too
    out = cli("demo", "reset")
    assert out.exit_code == 1 and "does not exist" in out.output
