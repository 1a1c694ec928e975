"""The partner's rate limit, as both edges apply it.

The database counts a partner's requests (``PARTNER_RATE_LIMIT`` a second, shared by its
PeTi and SNAP requests) in the statement that authenticates it and says how long to wait;
this is what a request does with that answer.
"""

from __future__ import annotations

from . import request_log
from .errors import TooManyRequests


def admit(partner_code: str, rate_wait: float) -> None:
    """The request is the partner's (its log lines say so from now on); over the rate
    limit (``rate_wait`` > 0 seconds to wait) it is refused with ``TooManyRequests``."""
    request_log.identify(partner_code)
    if rate_wait > 0:
        raise TooManyRequests(rate_wait)
