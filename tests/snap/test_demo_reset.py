"""``demo reset`` (pdam/cli/demo.py) after a bank paid the demo customer over SNAP: the
payment and the answers kept for its X-EXTERNAL-IDs go, the bank's credentials stay."""

from __future__ import annotations

from .conftest import Bank, register


def test_demo_reset_after_a_snap_payment(app, cli, rsa_keys, post_queued, run_sql, tmp_path):
    assert cli("demo", "seed").exit_code == 0
    secret = register(app, rsa_keys[0], "00", "demo-bank", tmp_path=tmp_path)
    bank = Bank(app, "demo-bank", rsa_keys[0], secret, "00")
    assert bank.inquiry(ref="walk-snap").status_code == 200
    assert bank.pay(ref="walk-snap").status_code == 200
    post_queued()
    assert run_sql("select count(*) from snap_payment") == [(1,)]
    assert run_sql("select count(*) from snap_external_id") == [(2,)]

    out = cli("demo", "reset")
    assert out.exit_code == 0, out.output
    assert "1 payments of partner 00 deleted, 2 bills unpaid again" in out.output
    for table in ("payment", "snap_payment", "snap_external_id", "inquiry"):
        assert run_sql(f"select count(*) from {table}") == [(0,)], table
    assert run_sql("select client_id from snap_client") == [("demo-bank",)]
    # The bank starts over with the same ids: a new inquiry and payment, not a replay.
    assert bank.inquiry(ref="walk-snap").status_code == 200
    res = bank.pay(ref="walk-snap")
    assert res.status_code == 200 and res.json["responseCode"] == "2002500", res.json
