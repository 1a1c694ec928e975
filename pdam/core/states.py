"""The payment state machine: ``created`` -> ``accepted|changed|rejected``, then
optionally reversed (``reversed_at``). The database enforces it (check
constraints, guarded updates); these are the names the code uses."""

from __future__ import annotations

CREATED = "created"
ACCEPTED = "accepted"
CHANGED = "changed"
REJECTED = "rejected"
#: Not a status column value: an accepted or changed payment with ``reversed_at``.
REVERSED = "reversed"

FINAL = (ACCEPTED, CHANGED, REJECTED)
REVERSIBLE = (ACCEPTED, CHANGED)
#: Every event a payment goes through, in order.
EVENTS = (CREATED, *FINAL, REVERSED)
