"""Contract 14.4: what banks' own libraries send and the standard's examples do not show.
``trxDateTime`` and ``trxDateInit`` with fractional seconds are accepted, and
``trxDateTime`` is echoed as sent, as ``referenceNo`` is (payment, its replay, status)."""

from __future__ import annotations

import pytest

#: As some banks' libraries send it (contract 14.4): milliseconds and an offset, 29 characters.
MILLIS = "2026-12-07T08:26:48.282+07:00"


@pytest.mark.parametrize("value", [MILLIS, "2026-12-07T08:26:48.5Z", "2026-12-07T08:26:48.123456+07:00"])
def test_fractional_seconds_are_accepted_and_echoed_as_sent(bank, bills, post_queued, value):
    inquiry = bank.inquiry(ref="frac", trxDateInit=value)
    assert inquiry.status_code == 200, inquiry.json
    paid = bank.pay(ref="frac", trxDateTime=value, referenceNo="bank-1")
    assert paid.status_code == 200, paid.json
    assert paid.json["virtualAccountData"]["trxDateTime"] == value
    again = bank.pay(ref="frac", trxDateTime=value, flagAdvise="Y")  # the bank's retry
    assert again.status_code == 200, again.json
    assert again.json["virtualAccountData"]["trxDateTime"] == value
    post_queued()
    status = bank.status(ref="frac")
    assert status.status_code == 200, status.json
    assert status.json["virtualAccountData"]["trxDateTime"] == value


def test_more_than_microseconds_is_still_a_format_error(bank, bills):
    res = bank.inquiry(ref="frac", trxDateInit="2026-12-07T08:26:48.1234567+07:00")
    assert (res.status_code, res.json["responseCode"]) == (400, "4002401")
    assert res.json["responseMessage"] == "Invalid Field Format [trxDateInit]"
