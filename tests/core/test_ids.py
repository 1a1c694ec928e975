"""Identifier rules (pdam/core/ids.py): every input that takes an identifier matches it whole.

``re.match`` with ``$`` lets a trailing newline through; each input below must refuse
it. Unit tests: no database, no app.
"""

from __future__ import annotations

import io

import pytest

from pdam.core import billing, errors, ids, partners
from pdam.peti import schemas
from pdam.web import request_log
from tests.factories import CSV_HEADER

INQ, NOB, PAT = "0123456789abcdef0123456789abcdef", "002008260001", "0123456789ABCDEF0123"


@pytest.mark.parametrize(
    "pattern, good",
    [
        (ids.CID, "010101010101"),
        (ids.PERIOD, "202001"),
        (ids.INQ, INQ),
        (ids.NOB, NOB),
        (ids.PAT, PAT),
        (ids.PARTNER_CODE, "00"),
        (ids.JTI, INQ),
    ],
)
def test_every_pattern_refuses_a_trailing_newline(pattern, good):
    assert ids.matches(pattern, good)
    assert not ids.matches(pattern, good + "\n")
    assert not ids.matches(pattern, " " + good)
    assert ids.ecma(pattern) == f"^{pattern.pattern}$"


def test_cid_in_the_path():
    assert schemas.check_cid("0101") == "0101"
    with pytest.raises(errors.Invalid):
        schemas.check_cid("0101\n")


def _refused(schema, data: dict, field: str) -> None:
    with pytest.raises(errors.Invalid) as caught:
        schemas.load(schema, data)
    assert field in caught.value.errors


def test_inq_and_periods_of_a_payment():
    good = {"inq": INQ, "amo": 1, "per": ["202001"], "mer": "1", "pid": "p1"}
    assert schemas.load(schemas.PaymentRequest(), good)["inq"] == INQ
    _refused(schemas.PaymentRequest(), {**good, "inq": INQ + "\n"}, "inq")
    _refused(schemas.PaymentRequest(), {**good, "per": ["202001\n"]}, "per")


@pytest.mark.parametrize("field, value", [("nob", NOB), ("pat", PAT), ("inq", INQ)])
def test_status_query(field, value):
    query = {"pid": "p1", field: value}
    assert schemas.load(schemas.StatusQuery(), query)[field] == value
    _refused(schemas.StatusQuery(), {**query, field: value + "\n"}, field)


def test_reversal_pat():
    assert schemas.load(schemas.ReversalQuery(), {"pid": "p", "pat": PAT})["pat"] == PAT
    _refused(schemas.ReversalQuery(), {"pid": "p", "pat": PAT + "\n"}, "pat")


def test_partner_code_is_checked_before_the_database():
    with pytest.raises(errors.Invalid, match="two digits"):
        partners.add(None, "00\n", "BANK1", None)


def _import(line: str):
    return billing.parse_csv(io.StringIO(CSV_HEADER + line))


def test_bill_import_fields():
    ok = "0101,A,,,b1,202001,0,1,1,1000,0,0,0,0\n"
    assert _import(ok)[0][1] == "0101"
    assert _import(" 0101 ,A,,,b1,\t202001,0,1,1,1000,0,0,0,0\n")[0][1] == "0101"  # spaces, tabs trimmed
    with pytest.raises(errors.Invalid, match="cid must be"):
        _import('"0101\n",A,,,b1,202001,0,1,1,1000,0,0,0,0\n')
    with pytest.raises(errors.Invalid, match="periode must be"):
        _import('0101,A,,,b1,"202001\n",0,1,1,1000,0,0,0,0\n')
    with pytest.raises(errors.Invalid, match="air must be"):
        _import('0101,A,,,b1,202001,0,1,1,"1000\n",0,0,0,0\n')


def test_request_id_header():
    assert request_log.SANE_ID.fullmatch("abc-1")
    assert not request_log.SANE_ID.fullmatch("abc-1\n")
