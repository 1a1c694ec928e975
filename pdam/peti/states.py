"""Payment states as PeTi says them: each state's code and messages, once.

``GET /status`` answers with the HTTP status ``code`` and ``message``; a
webhook body carries the same code and its own message (PeTi's callback says
"payment accepted" where the status route says "payment done"). ``reversed``
answers like the reversal itself (``DELETE /tagihan`` returns 200).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core import states


@dataclass(frozen=True)
class Wire:
    code: int
    message: str
    callback_message: str


WIRE = {
    states.CREATED: Wire(201, "payment in progress", "payment in progress"),
    states.ACCEPTED: Wire(202, "payment done", "payment accepted"),
    states.CHANGED: Wire(206, "suspect data", "suspect data"),
    states.REJECTED: Wire(409, "paid before", "paid before"),
    states.REVERSED: Wire(200, "payment reversed", "payment reversed"),
}
