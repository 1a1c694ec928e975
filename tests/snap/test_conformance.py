"""SNAP as a bank's own code sees it (contract 12.1-12.7): the standard's response headers,
every string field of every answer within ASPI's length, at most 24 bills, the bank's
own referenceNo/trxDateTime, status by inquiryRequestId, the codes 4042512/404xx13, null
as absent and padded virtual account numbers."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.factories import bill_line

from .conftest import CID, INQUIRY, PAYMENT, PSID, STATUS, compact

#: ASPI's maximum lengths (SNAP-BI VA services 24-26 and the B2B token, service 73) of
#: the string fields the answers carry, written here from the standard's tables (not read
#: from the code under test); a nested object's fields as ``object.field``.
#: ``additionalInfo`` is free-form in the standard.
ASPI = {
    "responseCode": 7,
    "responseMessage": 150,
    "accessToken": 2048,
    "tokenType": 2048,
    "expiresIn": 10,
    "partnerServiceId": 8,
    "customerNo": 20,
    "virtualAccountNo": 28,
    "virtualAccountName": 255,
    "inquiryRequestId": 128,
    "paymentRequestId": 128,
    "inquiryStatus": 2,
    "paymentFlagStatus": 2,
    "inquiryReason.english": 64,
    "inquiryReason.indonesia": 64,
    "paymentFlagReason.english": 200,
    "paymentFlagReason.indonesia": 200,
    "virtualAccountTrxType": 1,
    "trxDateTime": 25,
    "referenceNo": 64,
    "billCode": 2,
    "billNo": 18,
    "billName": 20,
    "billShortName": 10,
    "billDescription.english": 18,
    "billDescription.indonesia": 18,
    "billerReferenceId": 64,
    **{f"{amount}.value": 19 for amount in ("totalAmount", "paidAmount", "feeAmount", "billAmount")},
    **{f"{amount}.currency": 3 for amount in ("totalAmount", "paidAmount", "feeAmount", "billAmount")},
}
#: Objects whose fields are named on their own (not ``object.field``).
TRANSPARENT = {"virtualAccountData", "billDetails"}


def strings(obj: dict, parent: str | None = None):
    """(``object.field`` or ``field``, value) of every string in an answer, outside
    ``additionalInfo``."""
    for key, value in obj.items():
        if key == "additionalInfo":
            continue
        name = f"{parent}.{key}" if parent else key
        if isinstance(value, str):
            yield name, value
        elif isinstance(value, dict):
            yield from strings(value, None if key in TRANSPARENT else key)
        elif isinstance(value, list):
            for item in value:
                assert isinstance(item, dict), (key, item)
                yield from strings(item, None if key in TRANSPARENT else key)


def assert_within_aspi(res) -> list[str]:
    body = res.get_json()
    assert isinstance(body, dict), res.data
    found = list(strings(body))
    for name, value in found:
        assert name in ASPI, f"{name} is not a field of the standard's tables"
        assert len(value) <= ASPI[name], (name, len(value), ASPI[name], value)
    return [name for name, _ in found]


def test_every_string_of_every_answer_is_within_the_standards_length(
    bank, seed_bills, run_sql, post_queued, client
):
    """Table-driven: one answer of each kind (success and error of every route, a replay,
    the routes' edge cases at their longest), every string field checked."""
    long_cid = "9" * 20
    seed_bills(
        "".join(bill_line(CID, f"2020{m:02d}", name="N" * 200) for m in range(1, 13))
        + bill_line(long_cid, "202101", bill_no="B" * 40, name="Semar")
        + bill_line(long_cid, "202109", bill_no="B" * 18, name="Semar")
    )
    va_long = {"partnerServiceId": PSID, "customerNo": long_cid, "virtualAccountNo": PSID + long_cid}
    ref = "r" * 128
    answers = {
        "token": bank.request_token(),
        "token 400": bank.request_token(body=b"{}"),
        "token 401": bank.request_token(**{"X-SIGNATURE": "AAAA"}),
        "inquiry": bank.inquiry(ref=ref),
        "inquiry, long VA and bill id": bank.post(INQUIRY, {**va_long, "inquiryRequestId": "long"}),
        "inquiry 400": bank.inquiry(ref="x" * 129),
        "inquiry 404": bank.inquiry(cid="999999", ref="n"),
        "inquiry 409": bank.inquiry(ref="other", headers={"X-EXTERNAL-ID": "dup"}),
    }
    answers["inquiry 409"] = bank.inquiry(ref="another", headers={"X-EXTERNAL-ID": "dup"})
    total = answers["inquiry"].json["virtualAccountData"]["totalAmount"]["value"]
    bank_values = {"referenceNo": "R" * 64, "trxDateTime": "2026-11-30T09:15:00+07:00"}
    answers["payment"] = bank.pay(ref=ref, amount=total, virtualAccountName="v" * 255, **bank_values)
    answers["payment again"] = bank.pay(ref=ref, amount=total, flagAdvise="Y", **bank_values)
    answers["payment 404 amount"] = bank.pay(ref="long", cid=long_cid, amount="1.00")
    answers["payment 404 unknown VA"] = bank.pay(cid="999999", ref="n")
    answers["payment 400"] = bank.pay(ref=ref, amount="1")
    post_queued()
    answers["status"] = bank.status(ref=ref)
    answers["status by inquiryRequestId"] = bank.post(STATUS, {**bank.va(), "inquiryRequestId": ref})
    answers["status 404"] = bank.status(ref="none")
    answers["status 400"] = bank.post(STATUS, bank.va())
    answers["no route"] = bank.post("/snap/v1.0/transfer-va/nothing", {})
    answers["405"] = client.get(INQUIRY)

    expected_status = {name: int(res.get_json()["responseCode"][:3]) for name, res in answers.items()}
    assert {name: res.status_code for name, res in answers.items()} == expected_status
    assert answers["payment"].status_code == answers["status"].status_code == 200
    seen = set()
    for res in answers.values():
        seen.update(assert_within_aspi(res))
    # The whole table was exercised: every field of it was seen in an answer.
    assert seen == set(ASPI)
    long = answers["inquiry, long VA and bill id"].json["virtualAccountData"]
    assert [("billNo" in bill) for bill in long["billDetails"]] == [False, True]  # a 40-char id: absent


def test_the_schemas_limits_are_the_standards():
    """``MAX_LENGTH`` (what the schemas and the OpenAPI document use) is ASPI's, or
    stricter where one object serves two of its tables (the reasons: 64 and 200)."""
    from pdam.snap import schemas

    for name, limit in schemas.MAX_LENGTH.items():
        standard = [v for k, v in ASPI.items() if k == name or k.endswith("." + name.split(".")[-1])]
        if name.startswith("reason."):
            standard = [ASPI["inquiryReason." + name.split(".")[1]]]
        if name in ("language", "flagAdvise"):  # request fields
            continue
        if name == "trxDateTime":  # contract 14.4: fractional seconds echoed as sent (ASPI: 25)
            assert (limit, standard) == (len("2026-12-07T08:26:48.282123+07:00"), [25])
            continue
        assert standard and limit <= min(standard), (name, limit, standard)
    # The issue's own figures.
    assert (
        schemas.MAX_LENGTH["billDescription.english"] == schemas.MAX_LENGTH["billDescription.indonesia"] == 18
    )
    assert (schemas.MAX_LENGTH["billShortName"], schemas.MAX_LENGTH["billName"]) == (10, 20)
    assert (schemas.MAX_LENGTH["billCode"], schemas.MAX_LENGTH["virtualAccountName"]) == (2, 255)
    assert schemas.MAX_BILLS == 24


def test_the_document_states_every_answer_strings_length(app):
    """Every string property of the answers' components has its ``maxLength``."""
    from pdam.snap import schemas

    doc = app.test_client().get("/openapi.json").json
    components = doc["components"]["schemas"]
    answers = ["InquiryData", "PaymentData", "StatusData", "BillDetail", "BillDescription", "Reason"]
    answers += ["InquiryResponse", "TokenResponse"]
    for component in answers:
        for name, prop in components[f"Snap{component}"]["properties"].items():
            if name == "additionalInfo" or prop.get("type") != "string":
                continue
            key = name
            if component in ("BillDescription", "Reason"):
                key = f"{'billDescription' if component == 'BillDescription' else 'reason'}.{name}"
            assert prop.get("maxLength") == schemas.MAX_LENGTH[key], (component, name, prop)
    assert components["SnapInquiryData"]["properties"]["billDetails"]["maxItems"] == 24


# -- 1. response headers -------------------------------------------------------------------


def _wib(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.utcoffset() == dt.timedelta(hours=7), value
    return parsed


def test_every_answer_carries_x_timestamp_and_the_token_answer_x_client_key(bank, bills, client):
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    token = bank.request_token()
    assert token.status_code == 200 and token.headers["X-CLIENT-KEY"] == bank.client_id
    answers = [
        token,
        bank.request_token(body=b"{}"),
        bank.inquiry(ref="h-1", headers={"X-EXTERNAL-ID": "h"}),
        bank.inquiry(ref="h-1", headers={"X-EXTERNAL-ID": "h"}),  # a replay: sent now, too
        bank.inquiry(ref="h-2", headers={"X-EXTERNAL-ID": "h"}),  # 409
        bank.pay(ref="h-1"),
        bank.status(ref="h-1"),
        bank.status(ref="none"),
        bank.post("/snap/v1.0/nothing", {}),
        client.get(INQUIRY),
    ]
    for res in answers:
        sent = _wib(res.headers["X-TIMESTAMP"])
        assert before <= sent <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1), res.headers
    assert [res.status_code for res in answers] == [200, 400, 200, 200, 409, 200, 200, 404, 404, 405]
    assert all("X-CLIENT-KEY" not in res.headers for res in answers[1:])


# -- 3. at most 24 bills ---------------------------------------------------------------------

THIRTY = [f"{2020 + i // 12}{i % 12 + 1:02d}" for i in range(30)]


def test_a_customer_with_30_bills_is_offered_the_oldest_24_then_the_rest(
    bank, seed_bills, run_sql, post_queued
):
    seed_bills.simple(CID, THIRTY)
    first = bank.inquiry(ref="b-1").json["virtualAccountData"]
    assert [b["billShortName"] for b in first["billDetails"]] == THIRTY[:24]
    assert [b["billCode"] for b in first["billDetails"]][-1] == "24"
    assert first["totalAmount"] == {"value": f"{24 * 48800}.00", "currency": "IDR"}
    # The inquiry saved covers exactly the bills shown.
    saved = run_sql("select jsonb_array_length(snapshot->'bills') from inquiry where reference = 'b-1'")
    assert saved == [(24,)]
    # The same inquiryRequestId again: the same 24.
    assert bank.inquiry(ref="b-1").json["virtualAccountData"]["billDetails"] == first["billDetails"]
    paid = bank.pay(ref="b-1", amount=first["totalAmount"]["value"])
    assert paid.status_code == 200, paid.json
    assert len(paid.json["virtualAccountData"]["billDetails"]) == 24
    (periods,) = run_sql("select periods from payment where pid = 'b-1'")[0]
    assert sorted(periods) == THIRTY[:24]
    post_queued()
    assert run_sql("select count(*) from bill where paid_by is not null") == [(24,)]
    rest = bank.inquiry(ref="b-2").json["virtualAccountData"]
    assert [b["billShortName"] for b in rest["billDetails"]] == THIRTY[24:]
    assert rest["totalAmount"]["value"] == f"{6 * 48800}.00"
    assert bank.pay(ref="b-2", amount=rest["totalAmount"]["value"]).status_code == 200
    post_queued()
    assert run_sql("select count(*) from bill where paid_by is null") == [(0,)]


def test_before_posting_the_next_inquiry_shows_the_bills_not_being_paid(bank, seed_bills):
    seed_bills.simple(CID, THIRTY)
    first = bank.inquiry(ref="c-1").json["virtualAccountData"]
    assert bank.pay(ref="c-1", amount=first["totalAmount"]["value"]).status_code == 200
    rest = bank.inquiry(ref="c-2").json["virtualAccountData"]  # the payment is not posted yet
    assert [b["billShortName"] for b in rest["billDetails"]] == THIRTY[24:]


def test_peti_inquiries_are_not_capped(bank, seed_bills, issue_token, client):
    seed_bills.simple("5550030", THIRTY)
    res = client.get("/tagihan/5550030", headers={"Authorization": f"Bearer {issue_token('00')}"})
    assert res.status_code == 200 and len(res.json["tagihan"]) == 30


# -- 4. the bank's referenceNo and trxDateTime ----------------------------------------------


def test_payment_answers_the_banks_reference_and_time_and_replays_them(bank, bills, run_sql):
    bank.inquiry(ref="p-1")
    first = bank.pay(ref="p-1", referenceNo="BNK-0001", trxDateTime="2026-11-30T09:15:00+07:00")
    data = first.json["virtualAccountData"]
    nob = data["additionalInfo"]["nob"]
    assert (data["referenceNo"], data["trxDateTime"]) == ("BNK-0001", "2026-11-30T09:15:00+07:00")
    assert {b["billerReferenceId"] for b in data["billDetails"]} == {nob}  # ours stays here
    assert run_sql("select reference_no, trx_date_time from snap_payment") == [
        ("BNK-0001", "2026-11-30T09:15:00+07:00")
    ]
    # A retry under a new X-EXTERNAL-ID, even with other values: the first answer, byte for byte.
    again = bank.pay(
        ref="p-1", flagAdvise="Y", referenceNo="BNK-0002", trxDateTime="2026-11-30T09:16:00+07:00"
    )
    assert again.status_code == 200 and again.data == first.data
    status = bank.status(ref="p-1").json["virtualAccountData"]
    assert (status["referenceNo"], status["trxDateTime"]) == ("BNK-0001", "2026-11-30T09:15:00+07:00")
    assert run_sql("select count(*) from payment") == [(1,)]


def test_without_the_banks_values_the_answer_has_none(bank, bills, run_sql):
    bank.inquiry(ref="p-2")
    data = bank.pay(ref="p-2", referenceNo=None, trxDateTime=None).json["virtualAccountData"]
    assert "referenceNo" not in data and "trxDateTime" not in data
    status = bank.status(ref="p-2").json["virtualAccountData"]
    assert "referenceNo" not in status and "trxDateTime" not in status
    # A payment recorded before these were kept: its replay and status answer without them.
    run_sql("delete from snap_payment")
    again = bank.pay(ref="p-2").json["virtualAccountData"]
    assert "referenceNo" not in again and again["additionalInfo"] == data["additionalInfo"]


# -- 5. status by inquiryRequestId -----------------------------------------------------------


def test_status_by_inquiry_request_id(bank, bills):
    bank.inquiry(ref="s-1")
    nob = bank.pay(ref="s-1").json["virtualAccountData"]["additionalInfo"]["nob"]
    by_inquiry = bank.post(STATUS, {**bank.va(), "inquiryRequestId": "s-1"})
    assert by_inquiry.json["responseCode"] == "2002600", by_inquiry.json
    data = by_inquiry.json["virtualAccountData"]
    assert (data["inquiryRequestId"], data["paymentRequestId"]) == ("s-1", "s-1")
    assert data["additionalInfo"]["nob"] == nob
    both = bank.post(STATUS, {**bank.va(), "inquiryRequestId": "s-1", "paymentRequestId": "s-1"})
    assert both.json["virtualAccountData"] == data
    by_payment = bank.status(ref="s-1").json["virtualAccountData"]
    assert by_payment == data


@pytest.mark.parametrize(
    ("ids", "code"),
    [
        ({"inquiryRequestId": "s-1", "paymentRequestId": "s-2"}, "4042601"),  # two ids name no payment
        ({"inquiryRequestId": "unknown"}, "4042601"),
        ({}, "4002602"),
        ({"inquiryRequestId": None, "paymentRequestId": None}, "4002602"),
        ({"inquiryRequestId": ""}, "4002601"),
    ],
)
def test_status_ids_that_name_no_payment(bank, bills, ids, code):
    bank.inquiry(ref="s-1")
    assert bank.pay(ref="s-1").status_code == 200
    res = bank.post(STATUS, {**bank.va(), **ids})
    assert (res.status_code, res.json["responseCode"]) == (int(code[:3]), code), res.json
    if code == "4002602":
        assert res.json["responseMessage"] == "Invalid Mandatory Field [inquiryRequestId]"


# -- 6. codes ----------------------------------------------------------------------------------


def test_payment_for_a_va_that_does_not_exist_is_4042512(bank, bills, run_sql):
    res = bank.pay(cid="999999", ref="never")
    assert (res.status_code, res.json["responseCode"]) == (404, "4042512")
    assert res.json["responseMessage"] == "Invalid Bill/Virtual Account [Not Found]"
    # A known VA with no inquiry under that id, or one that expired: 4042519.
    res = bank.pay(ref="never")
    assert (res.status_code, res.json["responseCode"]) == (404, "4042519")
    assert run_sql("select count(*) from payment") == [(0,)]


@pytest.mark.parametrize("value", ["177600.50", "177600.01", "0.99"])
def test_an_amount_with_cents_is_invalid_amount(bank, bills, run_sql, value):
    bank.inquiry(ref="a-1")
    res = bank.pay(ref="a-1", amount=value)
    assert (res.status_code, res.json["responseCode"], res.json["responseMessage"]) == (
        404,
        "4042513",
        "Invalid Amount",
    )
    assert res.json["virtualAccountData"]["paymentFlagStatus"] == "01"
    inquiry = bank.inquiry(ref="a-2", amount={"value": value, "currency": "IDR"})
    assert inquiry.json["responseCode"] == "4042413"
    assert run_sql("select count(*) from payment") == [(0,)]
    assert bank.pay(ref="a-1").status_code == 200  # the inquiry is still there to pay


# -- 7. null is absent; padded virtual account numbers ---------------------------------------


def test_optional_fields_sent_as_null_are_absent(bank, bills):
    token = bank.request_token(body=compact({"grantType": "client_credentials", "additionalInfo": None}))
    assert token.json["responseCode"] == "2007300", token.json
    nulls = dict.fromkeys(["trxDateInit", "channelCode", "language", "amount", "additionalInfo"])
    inquiry = bank.inquiry(ref="n-1", **nulls)
    assert inquiry.json["responseCode"] == "2002400", inquiry.json
    nulls = ["virtualAccountName", "totalAmount", "trxDateTime", "referenceNo", "flagAdvise", "channelCode"]
    payment = bank.pay(ref="n-1", **dict.fromkeys(nulls + ["billDetails", "additionalInfo"]))
    assert payment.json["responseCode"] == "2002500", payment.json
    status = bank.status(ref="n-1", inquiryRequestId=None, additionalInfo=None)
    assert status.json["responseCode"] == "2002600", status.json
    # A mandatory field sent as null is missing.
    missing = bank.inquiry(ref=None)
    assert missing.json["responseMessage"] == "Invalid Mandatory Field [inquiryRequestId]"


@pytest.mark.parametrize(
    "va_no",
    [
        PSID + CID + " " * (28 - len(PSID + CID)),  # padded with trailing spaces to 28
        PSID + CID + " ",
        PSID.lstrip() + CID,  # the company code not padded
        PSID.lstrip() + CID + "   ",
    ],
)
def test_padded_virtual_account_numbers_are_accepted_and_answered_as_sent(bank, bills, va_no):
    va = {"partnerServiceId": PSID, "customerNo": CID, "virtualAccountNo": va_no}
    inquiry = bank.post(INQUIRY, {**va, "inquiryRequestId": "v-1"})
    assert inquiry.json["responseCode"] == "2002400", inquiry.json
    assert inquiry.json["virtualAccountData"]["virtualAccountNo"] == va_no
    body = {**va, "paymentRequestId": "v-1", "paidAmount": {"value": "177600.00", "currency": "IDR"}}
    payment = bank.post(PAYMENT, body)
    assert payment.json["responseCode"] == "2002500", payment.json
    assert payment.json["virtualAccountData"]["virtualAccountNo"] == va_no
    status = bank.post(STATUS, {**va, "inquiryRequestId": "v-1"})
    assert status.json["virtualAccountData"]["virtualAccountNo"] == va_no
    # The usual form of the same VA finds the same payment.
    usual = bank.status(ref="v-1").json["virtualAccountData"]
    assert usual["virtualAccountNo"] == PSID + CID
    assert usual["additionalInfo"]["nob"] == payment.json["virtualAccountData"]["additionalInfo"]["nob"]


def test_with_the_ledger_in_a_database_of_its_own(split_app, make_bank, seed_bills, post_queued):
    """BILLING_DATABASE_URL: the cap and the unknown VA read the ledger where it is."""
    bank = make_bank(app_=split_app)
    seed_bills("".join(bill_line(CID, period) for period in THIRTY), into=split_app)
    shown = bank.inquiry(ref="l-1").json["virtualAccountData"]
    assert [b["billShortName"] for b in shown["billDetails"]] == THIRTY[:24]
    assert bank.pay(ref="l-1", amount=shown["totalAmount"]["value"]).status_code == 200
    assert bank.pay(cid="999999", ref="l-9").json["responseCode"] == "4042512"
    assert bank.pay(ref="l-9").json["responseCode"] == "4042519"
