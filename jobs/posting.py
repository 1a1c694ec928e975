"""Posting tasks: apply recorded payments to the billing ledger."""

from __future__ import annotations

import logging

import procrastinate

from pdam import errors, payment, posting, queue

from . import app, flask_app

log = logging.getLogger(__name__)
cfg = flask_app.config


class PostingRetry(procrastinate.BaseRetryStrategy):
    """Retry failures that can pass every POSTING_RETRY_SECONDS, up to POSTING_MAX_ATTEMPTS runs."""

    def get_retry_decision(self, *, exception, job):
        if not errors.is_transient(exception) or job.attempts + 1 >= cfg["POSTING_MAX_ATTEMPTS"]:
            return None
        return procrastinate.RetryDecision(retry_in={"seconds": cfg["POSTING_RETRY_SECONDS"]})


@app.task(name=payment.POST_TASK, queue=queue.POSTING_QUEUE, pass_context=True, retry=PostingRetry())
def post_payment(context: procrastinate.JobContext, payment_id: int) -> str:
    with flask_app.app_context():
        return posting.run_job(payment_id, attempt=context.job.attempts + 1)


