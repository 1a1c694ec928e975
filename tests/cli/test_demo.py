"""``demo seed`` (pdam/cli/demo.py)."""

from __future__ import annotations


def test_demo_seed_is_idempotent(cli, run_sql):
    first = cli("demo", "seed", "--port", "5055")
    assert first.exit_code == 0, first.output
    assert "demo data created" in first.output
    assert 'curl -s -H "Authorization: Bearer ey' in first.output and ":5055/tagihan/" in first.output
    second = cli("demo", "seed")
    assert second.exit_code == 0 and "demo data already there" in second.output
    assert run_sql("select count(*) from bill") == [(4,)]
