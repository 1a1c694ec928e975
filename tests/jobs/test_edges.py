"""The job server imports no edge: the callback protocols it renders and sends come from
the core's registry (pdam/core/events.py), filled when the worker starts (``jobs.configure``
loads ``pdam.EDGES``)."""

from __future__ import annotations

import subprocess
import sys

from tests.factories import ROOT


def test_the_worker_loads_the_edges_registrations_when_it_starts():
    code = (
        "import sys\n"
        "import jobs, jobs.posting, jobs.webhooks, jobs.maintenance, jobs.worker\n"
        "from pdam.core import events\n"
        "print(sorted(m for m in ('pdam.peti', 'pdam.snap', 'flask') if m in sys.modules), events.registered())\n"
        "from pdam.infra import settings\n"
        "jobs.configure(settings.load({}))\n"
        "print(sorted(m for m in ('pdam.snap', 'flask') if m in sys.modules), events.registered())\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    # Imported: no edge, no protocol. Started: PeTi's protocol, still no web framework.
    assert res.stdout.splitlines() == ["[] ()", "[] ('peti',)"]


def test_a_delivery_whose_protocol_no_edge_registered_is_failed_visibly(
    partner_headers, example_bill, pay, receiver, app, run_sql
):
    """A configuration fault (the edge of the callback's protocol not loaded): nothing is
    sent, the delivery is failed with the reason, and an operator can resend it."""
    from tests.factories import deliver_pending

    pay(partner_headers, x_async=receiver.url())
    run_sql("update payment set callback_protocol = 'gone'")
    assert deliver_pending(app, run_sql) == ["DeliveryFailed"]
    assert receiver.calls == []
    ((status, error),) = run_sql("select status, last_error from webhook_delivery")
    assert status == "failed" and error.startswith("delivery error: UnknownProtocol")
