"""Webhook tasks: deliver a payment's callbacks (X-Async), in order, with retries."""

from __future__ import annotations

import procrastinate

from pdam import queue, webhooks

from . import app, flask_app

cfg = flask_app.config


class WebhookRetry(procrastinate.BaseRetryStrategy):
    """Retry an attempt the receiver could not take (5xx, timeout, connection error) every
    WEBHOOK_RETRY_SECONDS, at most WEBHOOK_MAX_ATTEMPTS runs; the domain code records the
    attempts and gives up at the cap or the deadline (WEBHOOK_DEADLINE_SECONDS)."""

    def get_retry_decision(self, *, exception, job):
        if not isinstance(exception, webhooks.RetryLater) or job.attempts + 1 >= cfg["WEBHOOK_MAX_ATTEMPTS"]:
            return None
        return procrastinate.RetryDecision(retry_in={"seconds": cfg["WEBHOOK_RETRY_SECONDS"]})


@app.task(name=webhooks.DELIVER_TASK, queue=queue.WEBHOOK_QUEUE, pass_context=True, retry=WebhookRetry())
def deliver(context: procrastinate.JobContext, delivery_id: int) -> str:
    with flask_app.app_context():
        return webhooks.deliver(delivery_id, job_attempt=context.job.attempts + 1)
