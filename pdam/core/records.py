"""What the core hands out: frozen records, never table rows.

An edge reads a record's attributes and maps them to its wire format. Columns that hold
secrets (``payment.callback_token``, ``payment.request_authorization``,
``partner.webhook_secret``, ``snap_client.client_secret``) are never fields of a record
handed to an edge: the core reads them where it needs them (opening a secret for the
operator who asks, the webhook delivery the job server sends: ``webhooks.Delivery``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any


def _from_row(cls, row) -> Any:
    """``cls`` from a row (a named tuple, or a mapping) that has at least its fields without a
    default (a field with one takes it when the row has no such column); other columns
    (secrets among them) are left out."""
    values = row if isinstance(row, dict) else row._asdict()
    return cls(**{name: values[name] for name in cls.FIELDS if name in values})


@dataclass(frozen=True, slots=True)
class Payment:
    """A recorded payment: the partner's request, its receipt number (``nob``) and token
    (``pat``), its state (``status``: created, then accepted, changed or rejected once;
    ``reversed_at`` when reversed) and, once posted, what the ledger paid (``paid_total``,
    ``paid_periods``; ``problem_periods``: periods the ledger could not pay). Its callback
    URL and the protocol it came through (``events``), never its callback credentials."""

    id: int
    partner_code: str
    pid: str
    customer_id: str
    inquiry_token: str
    amount: int
    periods: list[str]
    merchant: str
    pat: str
    nob: str
    accepted_at: dt.datetime
    status: str
    posted_at: dt.datetime | None
    paid_total: int | None
    paid_periods: list[str] | None
    problem_periods: list[str] | None
    posting_attempts: int
    stuck_at: dt.datetime | None
    stuck_reason: str | None
    reversed_at: dt.datetime | None
    callback_url: str | None
    callback_protocol: str | None
    #: Made with a sandbox credential: posted against the test customers, never the ledger.
    sandbox: bool

    FIELDS = ()  # set below: the names of the fields, in order

    @classmethod
    def from_row(cls, row) -> Payment:
        return _from_row(cls, row)


@dataclass(frozen=True, slots=True)
class Partner:
    """A partner channel (mitra): ``code`` is its JWT subject and the first two digits of
    every nob it makes. Never its webhook secret (``partners.secret`` opens it)."""

    code: str
    name: str
    active: bool
    created_at: dt.datetime
    #: Set on the partner a request authenticated as when its credential is a sandbox one
    #: (``token issue --sandbox``): the request then works on the partner's sandbox only.
    sandbox: bool = False

    FIELDS = ()

    @classmethod
    def from_row(cls, row) -> Partner:
        return _from_row(cls, row)


@dataclass(frozen=True, slots=True)
class PartnerListing:
    """A partner as operators list them, with its live API tokens and the networks its live
    tokens may be used from (None: any address)."""

    code: str
    name: str
    active: bool
    created_at: dt.datetime
    live_tokens: int
    allowed_addresses: list[str] | None

    FIELDS = ()

    @classmethod
    def from_row(cls, row) -> PartnerListing:
        return _from_row(cls, row)


@dataclass(frozen=True, slots=True)
class PartnerCheck:
    """What a partner's request is checked against: the partner of its token, whether the
    CLI issued that token (``known``) and revoked it, and its rate limit's answer
    (``rate_wait``: 0, a request taken; else the seconds until the next)."""

    partner: Partner
    known: bool
    revoked: bool
    rate_wait: float
    #: A sandbox token (``token issue --sandbox``): it sees the partner's sandbox only.
    sandbox: bool = False
    #: The request's address is one the partner's live tokens may be used from (contract 14.3).
    address_ok: bool = True

    @classmethod
    def from_row(cls, row) -> PartnerCheck:
        return cls(Partner.from_row(row), row.known, row.revoked, row.rate_wait, row.sandbox, row.address_ok)


@dataclass(frozen=True, slots=True)
class Grant:
    """A partner token about to be signed: the contract's claims (section 1) other than
    the issuer, which the signer adds: ``sub`` (``code``), ``name``, ``jti``, ``iat``
    (``issued_at``) and ``exp`` (``expires_at``)."""

    code: str
    name: str
    jti: str
    issued_at: dt.datetime
    expires_at: dt.datetime

    def claims(self) -> dict:
        """The claims as the token carries them (times in whole seconds since the epoch)."""
        return {
            "name": self.name,
            "sub": self.code,
            "iat": int(self.issued_at.timestamp()),
            "exp": int(self.expires_at.timestamp()),
            "jti": self.jti,
        }


@dataclass(frozen=True, slots=True)
class Token:
    """A partner token the CLI issued (its ``jti``; never the token itself)."""

    jti: str
    partner_code: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    revoke_reason: str | None
    sandbox: bool = False

    FIELDS = ()

    @classmethod
    def from_row(cls, row) -> Token:
        return _from_row(cls, row)


@dataclass(frozen=True, slots=True)
class SnapClientKey:
    """A SNAP client as its token request is checked: its RSA public key, its partner's
    state and its rate limit's answer (as ``PartnerCheck``)."""

    client_id: str
    partner_code: str
    public_key: str
    service_id: str
    active: bool
    rate_wait: float
    sandbox: bool = False
    #: The request's address is one this client may be used from (contract 14.3).
    address_ok: bool = True

    FIELDS = ()

    @classmethod
    def from_row(cls, row) -> SnapClientKey:
        return _from_row(cls, row)


@dataclass(frozen=True, slots=True)
class ReconciliationLine:
    """One line of a partner's reconciliation report (the ``reconciliation`` view, where
    operators read the same lines under PeTi's names): a bill a payment paid on that WIB
    day. ``line_no`` counts the partner's lines of the day (continuous across pages);
    ``reversed`` is 1 when the payment was reversed; amounts are the ones paid (the
    ``stamp_duty``, ``registration``, ``installation_*``, ``distance_fee`` and
    ``admin_installment`` columns of PeTi's report are always 0 here)."""

    line_no: int
    bill_no: str
    nob: str
    customer_id: str
    period: str
    bill_id: int
    pid: str
    merchant: str
    reversed: int
    water: int
    admin_fee: int
    admin_installment: int
    admin_vat: int
    late_fee: int
    installment: int
    stamp_duty: int
    registration: int
    installation_fee: int
    installation_vat: int
    distance_fee: int

    FIELDS = ()

    @classmethod
    def from_row(cls, row) -> ReconciliationLine:
        return _from_row(cls, row)


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer as the billing ledger knows it (``tariff``: its class, e.g. ``10R``)."""

    id: str
    name: str
    address: str
    tariff: str

    FIELDS = ()

    @classmethod
    def from_json(cls, values: dict) -> Customer:
        return cls(**{name: values.get(name) for name in cls.FIELDS})


@dataclass(frozen=True, slots=True)
class Bill:
    """An unpaid bill as an inquiry shows it: its number, period (``YYYYMM``), meter
    readings and usage, and its amounts (``total`` is their sum, as the ledger derives it)."""

    bill_no: str
    period: str
    meter_start: int
    meter_end: int
    usage: int
    water: int
    admin_fee: int
    admin_vat: int
    late_fee: int
    installment: int
    total: int

    FIELDS = ()

    @classmethod
    def from_json(cls, values: dict) -> Bill:
        return cls(**{name: values.get(name) for name in cls.FIELDS})


@dataclass(frozen=True, slots=True)
class Shown:
    """What an inquiry showed (its saved snapshot): the customer and the bills, oldest first."""

    customer: Customer
    bills: tuple[Bill, ...]

    @classmethod
    def from_json(cls, customer: dict, bills: list[dict]) -> Shown:
        return cls(Customer.from_json(customer), tuple(Bill.from_json(bill) for bill in bills))

    @classmethod
    def from_snapshot(cls, snapshot: dict | None) -> Shown | None:
        """``{"customer", "bills"}`` as stored with an inquiry (None: no snapshot)."""
        return None if snapshot is None else cls.from_json(snapshot["customer"], snapshot["bills"])


for _cls in (Payment, Partner, PartnerListing, Token, SnapClientKey, ReconciliationLine, Customer, Bill):
    type.__setattr__(_cls, "FIELDS", tuple(f.name for f in fields(_cls)))
