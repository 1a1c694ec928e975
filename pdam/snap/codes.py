"""SNAP response codes: ``responseCode`` = HTTP status (3) + service (2) + case (2).

Each check raises a ``SnapError`` naming its HTTP status and case; the service
comes from the route, so one error reads ``4002401`` on the inquiry and ``4002501``
on the payment. The HTTP status is always the code's first three digits. Core
errors are mapped here (``from_core``); only this module knows SNAP's codes.
"""

from __future__ import annotations

from ..core import errors

TOKEN, INQUIRY, PAYMENT, STATUS = "73", "24", "25", "26"
#: Service of a request that matched no SNAP route.
NO_SERVICE = "00"
ROUTES = {
    "/snap/v1.0/access-token/b2b": TOKEN,
    "/snap/v1.0/transfer-va/inquiry": INQUIRY,
    "/snap/v1.0/transfer-va/payment": PAYMENT,
    "/snap/v1.0/transfer-va/status": STATUS,
}
#: Seconds in the ``Retry-After`` of a general error caused by an outage.
RETRY_AFTER = "5"

#: (HTTP status, case) -> (English reason, Indonesian reason) of the error bodies.
REASONS = {
    (400, "00"): ("Bad request", "Permintaan tidak valid"),
    (400, "01"): ("Invalid field format", "Format field tidak valid"),
    (400, "02"): ("Invalid mandatory field", "Field wajib tidak diisi"),
    (401, "00"): ("Unauthorized", "Tidak diizinkan"),
    (401, "01"): ("Invalid token", "Token tidak valid"),
    (404, "01"): ("Transaction not found", "Transaksi tidak ditemukan"),
    (404, "12"): ("Bill not found", "Tagihan tidak ditemukan"),
    (404, "13"): ("Invalid amount", "Jumlah pembayaran tidak sesuai"),
    (404, "14"): ("Bill has been paid", "Tagihan sudah dibayar"),
    (404, "18"): ("Inconsistent request", "Permintaan tidak konsisten"),
    (404, "19"): ("Bill expired", "Tagihan kedaluwarsa"),
    (409, "00"): ("Conflict", "Konflik"),
    (429, "00"): ("Too many requests", "Terlalu banyak permintaan"),
    (500, "00"): ("General error", "Kesalahan umum"),
}


class SnapError(Exception):
    """An answer other than success: HTTP status, case and ``responseMessage``."""

    def __init__(self, http: int, case: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.http, self.case, self.message = http, case, message
        self.headers = headers or {}

    def code(self, service: str) -> str:
        return f"{self.http}{service}{self.case}"

    def reason(self) -> dict:
        english, indonesia = REASONS.get((self.http, self.case), (self.message, self.message))
        return {"english": english, "indonesia": indonesia}


def service_of(path: str) -> str:
    return ROUTES.get(path.rstrip("/") or path, NO_SERVICE)


def bad_request() -> SnapError:
    return SnapError(400, "00", "Bad Request")


def invalid_format(field: str) -> SnapError:
    return SnapError(400, "01", f"Invalid Field Format [{field}]")


def missing(field: str) -> SnapError:
    return SnapError(400, "02", f"Invalid Mandatory Field [{field}]")


def unauthorized(reason: str) -> SnapError:
    return SnapError(401, "00", f"Unauthorized. [{reason}]")


def invalid_token() -> SnapError:
    return SnapError(401, "01", "Invalid Token (B2B)")


def transaction_not_found() -> SnapError:
    return SnapError(404, "01", "Transaction Not Found")


def bill_not_found() -> SnapError:
    return SnapError(404, "12", "Invalid Bill/Virtual Account [Not Found]")


def invalid_amount() -> SnapError:
    return SnapError(404, "13", "Invalid Amount")


def paid_bill() -> SnapError:
    return SnapError(404, "14", "Paid Bill")


def inconsistent() -> SnapError:
    return SnapError(404, "18", "Inconsistent Request")


def expired() -> SnapError:
    return SnapError(404, "19", "Invalid Bill/Virtual Account [Expired]")


def conflict() -> SnapError:
    return SnapError(409, "00", "Conflict")


def too_many(retry_after: int) -> SnapError:
    return SnapError(429, "00", "Too Many Requests", {"Retry-After": str(retry_after)})


def general(retry: bool = False) -> SnapError:
    return SnapError(500, "00", "General Error", {"Retry-After": RETRY_AFTER} if retry else None)


def from_core(exc: errors.PdamError, service: str) -> SnapError:
    """The SNAP answer to a core error on ``service``: a 4xx the bank can act on, or a
    general error (5xx, retryable) for anything that says "not now"."""
    if isinstance(exc, errors.ReferenceReused):
        return inconsistent()
    if isinstance(exc, (errors.AlreadyPaid, errors.NothingToPay)):
        return paid_bill()
    if isinstance(exc, errors.UnknownCustomer):
        return bill_not_found()
    if isinstance(exc, errors.InquiryNotFound):
        return expired()
    if isinstance(exc, errors.Mismatch):
        return invalid_amount()
    if isinstance(exc, errors.NotFound):
        return transaction_not_found() if service == STATUS else bill_not_found()
    if isinstance(exc, errors.Invalid):
        return bad_request()
    # Unavailable (receipt numbers of the day used up), a race lost twice (Conflict), or
    # anything else: nothing the bank did wrong; it may retry.
    return general(retry=True)
