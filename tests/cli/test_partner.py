"""``partner`` commands (pdam/cli/partner.py): add, list, deactivate, the webhook secret."""

from __future__ import annotations


def test_partner_commands(cli):
    assert cli("partner", "add", "00", "BANK1").exit_code == 0
    dup = cli("partner", "add", "00", "BANK1")
    assert dup.exit_code == 1 and "already exists" in dup.output
    bad = cli("partner", "add", "7", "X")
    assert bad.exit_code == 1 and "two digits" in bad.output
    listing = cli("partner", "list")
    assert "00" in listing.output and "BANK1" in listing.output and "yes" in listing.output
    assert cli("partner", "deactivate", "00").exit_code == 0
    assert "no" in cli("partner", "list").output.splitlines()[1]
    missing = cli("partner", "deactivate", "55")
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_partner_secret(cli):
    cli("partner", "add", "00", "BANK1")
    first = cli("partner", "secret", "00").output.strip()
    assert len(first) == 64
    assert cli("partner", "secret", "00").output.strip() == first
    rotated = cli("partner", "secret", "00", "--rotate").output.strip()
    assert rotated != first and cli("partner", "secret", "00").output.strip() == rotated
