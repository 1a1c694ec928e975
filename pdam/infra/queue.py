"""Deferring jobs inside the caller's transaction.

Jobs are deferred by task name through the port (``port.defer`` in a core plan, or
``defer`` here), on the caller's connection: the job row commits or rolls back with the
payment. Sync or async, the port runs it through a Procrastinate App of its own whose
pool is never opened (a connection is always given). ``pdam`` never imports ``jobs``;
the task names below are the contract between the two.
"""

from __future__ import annotations

from typing import Any

from . import port
from .port import Plan

POSTING_QUEUE = "posting"
MAINTENANCE_QUEUE = "maintenance"
QUEUES = (POSTING_QUEUE, MAINTENANCE_QUEUE)

POST_PAYMENT = "posting.post_payment"


@port.plan
def defer(
    db: port.Db,
    task_name: str,
    *,
    queue: str,
    lock: str | None = None,
    schedule_in: dict | None = None,
    **task_kwargs: Any,
) -> Plan[int]:
    """Insert the job on the caller's current transaction (begun if none is open); its id."""
    return (yield port.defer(task_name, queue=queue, lock=lock, schedule_in=schedule_in, **task_kwargs))
