"""The job server reads its settings when the worker starts, not when ``jobs`` is imported."""

from __future__ import annotations

import os
import subprocess
import sys

import procrastinate
import pytest

from pdam.core import errors
from pdam.infra import settings
from tests.factories import ROOT


def test_importing_the_tasks_reads_no_setting():
    """A setting that cannot be read stops nothing at import: only the worker's start
    (``configure``), with the setting's own message."""
    code = (
        "import jobs, jobs.posting, jobs.webhooks, jobs.maintenance, jobs.worker\n"
        "try:\n    jobs.configure()\nexcept RuntimeError as exc:\n    print(exc)\n"
    )
    env = {**os.environ, "POSTING_RETRY_SECONDS": "soon"}
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "POSTING_RETRY_SECONDS must be an integer, got 'soon'"


def test_the_runtime_is_the_one_configure_made_and_never_a_quiet_default(monkeypatch):
    """Before the worker's start there is no runtime: ``current()`` says so, it does not
    make one from the environment (another database, other keys)."""
    import jobs

    monkeypatch.setattr(jobs, "_runtime", None)
    with pytest.raises(jobs.NotConfigured, match="configure"):
        jobs.current()
    made = jobs.configure(settings.load({}))
    assert jobs.current() is made


@pytest.fixture
def configured(monkeypatch):
    """``jobs.configure`` with the given settings, undone after the test."""
    import jobs

    monkeypatch.setattr(jobs, "_runtime", None)

    def make(**overrides):
        return jobs.configure({**settings.load({}), **overrides})

    return make


def test_the_retry_waits_the_configured_seconds(configured):
    import jobs

    strategy = jobs.RetryOnType("WEBHOOK_RETRY_SECONDS")
    configured(WEBHOOK_RETRY_SECONDS=7)
    decision = strategy.get_retry_decision(exception=errors.Retry("again"), job=None)
    assert isinstance(decision, procrastinate.RetryDecision)
    configured(WEBHOOK_RETRY_SECONDS=11)
    later = strategy.get_retry_decision(exception=errors.Retry("again"), job=None)
    assert (decision.retry_at - later.retry_at).total_seconds() == pytest.approx(-4, abs=1)
    assert strategy.get_retry_decision(exception=errors.GiveUp("no"), job=None) is None


def test_the_stalled_job_check_follows_the_setting(configured):
    from jobs import app, maintenance, worker_options

    for seconds, every in ((10, 5), (300, 59), (1, 1)):
        conf = configured(STALLED_JOB_SECONDS=seconds).settings
        maintenance.schedule_recovery(conf)
        (periodic,) = [
            p
            for key, p in app.periodic_registry.periodic_tasks.items()
            if key[0] == "maintenance.recover_stalled"
        ]
        assert periodic.cron == f"* * * * * */{every}"
        assert worker_options(conf)["stalled_worker_timeout"] == seconds
