"""The queue (pdam/infra/queue.py): jobs deferred by task name on the caller's connection."""

from __future__ import annotations

from pdam.infra import queue
from pdam.web import runtime


def test_job_deferred_first_in_a_transaction_is_committed(app, run_sql):
    """queue.defer begins the caller's transaction itself, so the job commits with it."""
    with app.app_context(), runtime.transaction() as conn:
        queue.defer(conn, "maintenance.noop", queue=queue.MAINTENANCE_QUEUE)
    assert run_sql("select count(*) from procrastinate_jobs where task_name = 'maintenance.noop'") == [(1,)]
