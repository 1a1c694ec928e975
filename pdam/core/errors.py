"""The domain's exceptions. Each docstring is its default message.

The core says *what* went wrong; each edge says how that reads on its wire
(``pdam/web/errors.py`` for the JSON error body and HTTP status, the SNAP
edge for its response codes). Two more types carry the one retry decision of
the job server: ``Retry`` (a failure that can pass) and ``GiveUp``; a task's
retry strategy reads only that type. A database failure reaches the core as the port's
``Transient`` or ``Permanent`` (``IntegrityViolation``: a constraint, a unique one when a
concurrent writer won), translated once, at the port.
"""

from __future__ import annotations

# The port's translation of database failures: the core's words for them.
from ..infra.port import IntegrityViolation, Permanent, Transient, is_transient  # noqa: F401


class PdamError(Exception):
    """Something in the payment domain went wrong"""

    def __init__(self, message: str | None = None, errors: dict | None = None):
        self.message = message or (self.__doc__ or "").strip()
        self.errors = errors
        super().__init__(self.message)


class Invalid(PdamError):
    """The values given break a rule of the domain"""


class NotAllowed(PdamError):
    """The partner may not do this (now)"""


class NotFound(PdamError):
    """What was asked for does not exist, or is not the caller's"""


class Conflict(PdamError):
    """It clashes with what is already recorded"""


class Mismatch(PdamError):
    """It does not match what the inquiry recorded"""


# Refinements an edge may answer more precisely than its parent (each is still its
# parent: PeTi answers them all with the parent's status).


class UnknownCustomer(NotFound):
    """customer not found"""


class NothingToPay(NotFound):
    """no unpaid bills"""


class InquiryNotFound(NotFound):
    """inquiry token unknown or expired"""


class ReferenceReused(Conflict):
    """the partner's reference was already used for another request"""


class AlreadyPaid(Conflict):
    """the bills are already paid or being paid"""


class Unavailable(PdamError):
    """Service temporarily unavailable, please retry"""


class Retry(PdamError):
    """A failure that can pass; the job server tries again"""

    #: Retry in SANDBOX_RETRY_SECONDS rather than the task's own interval: the sandbox's
    #: "ledger unreachable" test customer, whose retries a partner waits for.
    soon = False


#: SQLSTATE of the sandbox's "ledger unreachable" (``sandbox_pay_bills_v1``, sql/015_sandbox.sql).
SANDBOX_UNREACHABLE = "PDS01"


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error, raised straight, wrapped by SQLAlchemy, or as the cause
    of the port's translation (``Transient``/``Permanent``)."""
    cause = exc.__cause__
    for candidate in (exc, getattr(exc, "orig", None), cause, getattr(cause, "orig", None)):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str):
            return state
    return None


class GiveUp(PdamError):
    """A failure that does not pass, or the last attempt failed; the job server stops"""


def retry_decision(exc: BaseException, attempt: int, max_attempts: int) -> Retry | GiveUp:
    """The typed answer to a failed job attempt: ``Retry`` while attempts remain and the
    failure can pass, else ``GiveUp``. Either is raised ``from exc``."""
    soon = _sqlstate(exc) == SANDBOX_UNREACHABLE or getattr(exc, "soon", False)
    if isinstance(exc, (Retry, GiveUp)):
        passes = isinstance(exc, Retry)
    else:
        passes = is_transient(exc) or soon
    message = f"attempt {attempt}: {type(exc).__name__}: {exc}"
    if passes and attempt < max_attempts:
        retry = Retry(message)
        retry.soon = soon
        return retry
    return GiveUp(message)
