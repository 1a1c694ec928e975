"""What the tests make, in one place: bills CSV, payment bodies, payments, tokens, the clock.

Plain functions and constants (no fixtures: those are in tests/conftest.py, which
builds on these). Each thing exists once:

- the bills CSV: ``CSV_HEADER`` and ``bill_line`` (the importer's 14 columns);
- the contract's example customer and bill (``CONTRACT_CUSTOMER``, ``CONTRACT_BILL``);
- a payment request's body (``body``) for ``CID``;
- a payment made through the domain code (``make_payment``: inquiry, acceptance and,
  when asked, posting, on one connection) - for worlds and drills that fill a
  database without HTTP; through the API the ``pay`` fixture does the same; the
  posting job (``run_posting``) and webhook deliveries (``deliver_pending``) run in
  process as the worker runs them;
- tokens: issued as the CLI does (``issue``), or claims to sign for the bad-token
  drills (``claims``, ``record_jti``, ``sign``, ``unsigned_token``...);
- the test clock (``Clock``), which starts at ``H``, payment day 26 August 2020
  10:00 WIB;
- ``sql_runner``, ``wait_for``, ``kill`` (a worker process) and ``race`` (calls
  released at once from their own threads).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import json
import os
import secrets
import signal
import threading
import time
from pathlib import Path

import jwt as pyjwt
import psycopg
from sqlalchemy.engine import make_url

from pdam.core import billing, inquiry, payments, posting, tokens
from pdam.core.payments import WIB
from pdam.infra import sealing

ROOT = Path(__file__).resolve().parent.parent
ISSUER = "pdam-test"
#: The tests' own key for secrets at rest (SECRET_KEYS): set in the environment by
#: tests/conftest.py, so apps, in-process jobs and worker processes all use it.
SECRET_KEYS = "nihQX_4TFtHjhViDZje7kKi670r-nHnIFABaycK2Nyw="
SEALER = sealing.Sealer([SECRET_KEYS])

# -- bills -----------------------------------------------------------------------------------

CSV_HEADER = (
    "cid,nama,alamat,golongan,bill_id,periode,meter_awal,meter_akhir,pakai,"
    "air,administrasi,ppn_administrasi,denda,angsuran\n"
)
CONTRACT_CUSTOMER = "010101010101"
CONTRACT_BILL = (
    "010101010101,Semar Badranaya,Jl. Perjuangan No. 102,10R - Rumah Tangga 10,"
    "1234202005,202005,496,501,10,50000,8000,800,30000,0\n"
)


def bill_line(
    cid: str,
    period: str,
    water: int = 40000,
    admin: int = 8000,
    vat: int = 800,
    late_fee: int = 0,
    bill_no: str | None = None,
    name: str | None = None,
    address: str = "Jl. Test",
) -> str:
    """One line of a bills file (meters 0-10, no installment); the bill number is
    ``cid + period`` unless given. The defaults make a bill of 48,800."""
    return (
        f"{cid},{name or f'Pelanggan {cid}'},{address},10R,{bill_no or cid + period},{period},"
        f"0,10,10,{water},{admin},{vat},{late_fee},0\n"
    )


def import_bills(conn, lines: str) -> None:
    """Load bills (CSV lines without the header) through the importer, on ``conn``."""
    billing.import_rows(conn, billing.parse_csv(io.StringIO(CSV_HEADER + lines)))


# -- payments --------------------------------------------------------------------------------

CID = "010101002004"


def body(inq_token, **overrides) -> dict:
    """A POST /tagihan body (the contract's example for ``CID``); a field given as ``...`` is left out."""
    base = {
        "inq": inq_token,
        "pid": "evid-123456",
        "amo": 345100,
        "mer": "1234",
        "per": [201901, 201902, 201903],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def make_payment(
    conn,
    partner: str,
    cid: str,
    pid: str,
    now: dt.datetime,
    *,
    post: bool = False,
    before_posting=None,
):
    """A payment of every bill ``cid`` has unpaid, made through the domain code on ``conn``
    (payments and ledger in one database): an inquiry, its acceptance and, with ``post``,
    its posting (``before_posting(conn)`` runs just before). Returns the payment (a record)."""
    inq = inquiry.inquire(conn, conn, partner, cid, now, 900)
    req = payments.PaymentRequest(
        customer_id=cid,
        inquiry_token=inq.token,
        reference=pid,
        merchant="1",
        periods=tuple(b.period for b in inq.bills),
        amount=sum(b.total for b in inq.bills),
    )
    row = payments.accept(conn, partner, req, now, SEALER).payment
    if before_posting:
        before_posting(conn)
    if post:
        posting.post(conn, conn, row.id, now)
    return row


def run_job(app, fn, *args, **kwargs):
    """``fn(runtime, connect, *args)``, a job server's async function, as the job server runs
    it: on the app's runtime and a pool configured like the worker's."""
    import asyncio

    import jobs

    rt = app.extensions["pdam.runtime"]

    async def once():
        pool = jobs.make_pool(
            rt.database.url,
            rt.settings,
            open=False,
            min_size=1,
            max_size=2,
        )
        async with pool:
            return await fn(rt, pool.connection, *args, **kwargs)

    return asyncio.run(once())


def run_posting(app, payment_id: int, attempt: int = 1) -> str:
    """One posting attempt as the job server runs it (``jobs.posting.run``)."""
    from jobs import posting

    return run_job(app, posting.run, payment_id, attempt)


def run_delivery(app, delivery_id: int) -> str:
    """One attempt of a webhook delivery as the job server makes it (``jobs.webhooks.deliver``)."""
    from jobs import webhooks

    return run_job(app, webhooks.deliver, delivery_id)


def issue(
    app, private_key: str, code: str, now: dt.datetime | None = None, days: int = 30, sandbox: bool = False
) -> str:
    """A token of partner ``code`` (a sandbox token with ``sandbox``), issued through the
    domain code the CLI uses (recorded jti)."""
    from pdam.cli.token import signer
    from pdam.web import runtime

    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    with app.app_context(), runtime.transaction() as conn:
        expires = now + dt.timedelta(days=days)
        sign = signer(private_key)
        return tokens.issue(conn, code=code, now=now, expires=expires, sign=sign, sandbox=sandbox)


def deliver_pending(app, run_sql) -> list[str]:
    """Run every pending webhook delivery once in this process, as the worker's job would:
    each one's result, or the name of the retry decision it raised."""
    from pdam.core import errors

    results = []
    for (delivery_id,) in run_sql("select id from webhook_delivery where status = 'pending' order by id"):
        try:
            results.append(run_delivery(app, delivery_id))
        except (errors.Retry, errors.GiveUp) as exc:
            results.append(type(exc).__name__)
    return results


# -- tokens ----------------------------------------------------------------------------------


def claims(**overrides) -> dict:
    """A partner token's claims (partner ``00``, valid for an hour, a fresh ``jti``); a claim
    given as None is left out."""
    now = int(time.time())
    base = {
        "name": "BANK1",
        "sub": "00",
        "iat": now - 10,
        "exp": now + 3600,
        "iss": ISSUER,
        "jti": secrets.token_hex(16),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def record_jti(run_sql, c: dict) -> dict:
    """Record the token's ``jti`` as the CLI does, so that only the claim under test is wrong."""
    if "jti" in c:
        run_sql(
            "insert into api_token (jti, partner_code, issued_at, expires_at)"
            " values (%s, %s, now() - interval '1 hour', now() + interval '1 day')",
            (c["jti"], c.get("sub", "00")),
        )
    return c


def sign(keys, claims: dict, alg: str = "ES256", key: str | None = None, headers=None) -> str:
    return pyjwt.encode(claims, key or keys[alg]["private"], algorithm=alg, headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(c: dict) -> str:
    """``alg: none``: no signature at all."""
    return f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(c).encode())}."


def hs256_with_public_key(c: dict, public_key: str) -> str:
    """HS256 with the service's public key as the shared secret (algorithm confusion)."""
    head, body = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()), _b64(json.dumps(c).encode())
    mac = hmac.new(public_key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


# -- time --------------------------------------------------------------------------------------

#: Payment day H: 26 August 2020, 10:00 WIB (where the test clock starts).
H = dt.datetime(2020, 8, 26, 10, 0, tzinfo=WIB)


class Clock:
    """The app's clock, moved by the test (``clock.at = ...``); starts at ``H``."""

    def __init__(self, at: dt.datetime = H):
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


# -- databases ---------------------------------------------------------------------------------


def sql_runner(url: str):
    """``run(sql, params)`` on the database at ``url``, outside any app, committed at once:
    the rows of a query, else the row count."""

    def run(sql: str, params=None):
        with psycopg.connect(url, autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else cur.rowcount

    return run


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


# -- processes and threads -----------------------------------------------------------------------


def kill(proc) -> None:
    """SIGKILL a process started in a session of its own, and its children (a worker's)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def race(calls) -> list:
    """Run each of ``calls`` in a thread of its own, all released at once; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list = []

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except BaseException as exc:  # raised in the caller's thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


# -- OpenAPI -----------------------------------------------------------------------------


def typed(prop: dict) -> bool:
    """Whether an OpenAPI schema says what it is (a ``fields.Function`` without an entry in
    the document's field docs comes out as ``{}``)."""
    return bool({"type", "$ref", "allOf", "anyOf", "oneOf", "enum"} & set(prop))


def assert_properties_typed(schema: dict, where: str) -> None:
    """Every property of ``schema``, nested ones and array items included, is ``typed``."""
    for name, prop in schema.get("properties", {}).items():
        assert typed(prop), f"{where}.{name} has no type"
        assert_properties_typed(prop, f"{where}.{name}")
        if "items" in prop:
            assert typed(prop["items"]), f"{where}.{name}[] has no type"


# -- Schemathesis ------------------------------------------------------------------------


def fuzz_cases(operation, min_cases: int, steer, headers, counts) -> int:
    """Send Schemathesis' generated cases of ``operation``, positive and negative, at least
    ``min_cases`` of them; a positive case is first steered to real data (``steer(case,
    data)``, ``data`` a Hypothesis draw source). Every answer goes through all the checks
    and its status is counted in ``counts``; returns how many cases were sent.
    ``FUZZ_RANDOM=1`` draws new examples instead of the fixed ones."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st
    from schemathesis import GenerationMode

    modes = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
    sent = 0

    @settings(
        max_examples=min_cases,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded time; the failing case is shown
        derandomize=os.environ.get("FUZZ_RANDOM") != "1",
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(case=st.one_of(modes), data=st.data())
    def run(case, data):
        nonlocal sent
        sent += 1
        if case.meta.generation.mode == GenerationMode.POSITIVE:
            steer(case, data)
        counts[case.call_and_validate(headers=headers(case)).status_code] += 1

    run()
    return sent


def fuzz_coverage(operation, repair, headers) -> int:
    """Send the coverage-phase cases of ``operation`` (a positive one ``repair``ed first)
    under all the checks; returns how many were sent."""
    from schemathesis import GenerationMode

    sent = 0
    for case in coverage_cases(operation):
        sent += 1
        if case.meta.generation.mode == GenerationMode.POSITIVE:
            repair(case)
        case.call_and_validate(headers=headers(case))
    return sent


def only_failed(statuses: dict) -> set:
    """The operations (labels of ``statuses``, ``{label: {status: count}}``) that never
    answered 2xx."""
    return {label for label, codes in statuses.items() if not any(200 <= c < 300 for c in codes)}


def coverage_cases(operation):
    """Schemathesis' coverage-phase cases of one operation (boundary values, missing and
    wrong-typed parameters...), as its CLI runs them. The pytest integration of the pinned
    Schemathesis does not run under pytest 9, so the generator is driven here."""
    from schemathesis import GenerationMode
    from schemathesis.generation.drivers import CoverageGenerator
    from schemathesis.generation.feedback import FeedbackSources
    from schemathesis.generation.overrides import Override

    config = operation.schema.config
    return CoverageGenerator(
        operation=operation,
        generation_modes=list(GenerationMode),
        generation_config=config.generation_for(operation=operation, phase="coverage"),
        auth_storage=None,
        override=Override(),
        feedback=FeedbackSources(),
    )


def url_for_database(server_url: str, name: str) -> str:
    """``server_url`` with the database ``name``."""
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


#: The path of the webhook receivers (tests/fixtures/network.py).
HOOK = "/hook"


def driver_error(exc: BaseException) -> BaseException | None:
    """The driver's failure under a job's ``Retry``/``GiveUp``: its cause, through the
    port's translation (``port.Transient``/``Permanent``, whose cause it is)."""
    from pdam.infra import port

    cause = exc.__cause__
    return cause.__cause__ if isinstance(cause, (port.Transient, port.Permanent)) else cause
