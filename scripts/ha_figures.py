"""The HA drill's figures, report and checks (scripts/ha_drill.py): what the partner's
answers, the leader's tables, the webhook receiver and /health say, per fault."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from drill_traffic import health_figures  # noqa: E402

from bench import common  # noqa: E402
from pdam.infra import settings  # noqa: E402

if TYPE_CHECKING:
    from drill_traffic import Answer, Receiver

#: Payments must be accepted again within this many seconds of each fault.
RECOVERY_LIMIT_SECONDS = 30.0
#: /health must answer within this.
HEALTH_LIMIT_SECONDS = 1.0
FAULTS = ("kill leader", "kill sync_standby", "freeze etcd")


def _phase(answers: list[Answer], fault: float, until: float) -> dict:
    """The answers to requests sent from ``fault`` until ``until``, and how long payments
    were not accepted: the longest stretch without a 202 (by answer time) from the fault on."""
    mine = [a for a in answers if fault <= a.sent < until]
    accepted = sorted(a.received for a in mine if a.kind == "payment" and a.status == 202)
    edges = [fault, *accepted]
    longest = max((b - a for a, b in zip(edges, edges[1:], strict=False)), default=None)
    first = next((t for t in accepted if t > fault), None)
    slow = max((a.received - a.sent for a in mine), default=0.0)
    return {
        "statuses": dict(sorted(Counter(f"{a.kind} {a.status}" for a in mine).items())),
        "first_202_after_seconds": None if first is None else round(first - fault, 2),
        "longest_without_202_seconds": None if longest is None else round(longest, 2),
        "slowest_answer_seconds": round(slow, 2),
    }


def figures(url: str, run: dict, receiver: Receiver, folder: Path) -> dict:
    answers: list[Answer] = run["traffic"].answers
    events = run["events"]
    start = run["start"]
    faults = [(step, at) for step, at, _ in events if step in FAULTS]
    ends = [at for _, at in faults[1:]] + [max(a.sent for a in answers) + 1]
    phases = {step: _phase(answers, at, end) for (step, at), end in zip(faults, ends, strict=True)}
    accepted = {a.pid for a in answers if a.kind == "payment" and a.status == 202}
    statuses = Counter(f"{a.kind} {a.status}" for a in answers)
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "select pid, status, cardinality(paid_periods), nob from payment where pid = any(%s)",
            (sorted(accepted),),
        ).fetchall()
        paid_bills = dict(
            conn.execute(
                "select paid_by, count(*) from bill where paid_by is not null group by paid_by"
            ).fetchall()
        )
        ledger_sum, posted_sum = conn.execute(
            "select (select coalesce(sum(total), 0)::bigint from bill where paid_by is not null),"
            " (select coalesce(sum(paid_total), 0)::bigint from payment"
            "  where status in ('accepted', 'changed') and reversed_at is null)"
        ).fetchone()
        deliveries = conn.execute(
            "select d.event_id::text, d.status from webhook_delivery d join payment p on p.id = d.payment_id"
            " where p.pid = any(%s)",
            (sorted(accepted),),
        ).fetchall()
        with_callback = {
            r[0]
            for r in conn.execute(
                "select distinct p.pid from payment p join webhook_delivery d on d.payment_id = p.id"
                " where p.pid = any(%s)",
                (sorted(accepted),),
            ).fetchall()
        }
        payments_total = conn.execute("select count(*) from payment").fetchone()[0]
    found = {r[0]: r for r in rows}
    repeated = [e for e, n in receiver.events.items() if n > 1]
    near_fault = [e for e in repeated if any(at - 2 <= receiver.first[e] <= at + 40 for _, at in faults)]
    deadline = settings.load()["REQUEST_DEADLINE_SECONDS"]
    latencies = sorted(a.received - a.sent for a in answers if a.status)
    return {
        "events": [(step, round(at - start, 1), detail) for step, at, detail in events],
        "payments_sent": sum(1 for a in answers if a.kind == "payment"),
        "flows_not_sent_client_busy": run.get("not_sent", 0),
        "statuses": dict(sorted(statuses.items())),
        "phases": phases,
        "accepted_202": len(accepted),
        "payments_in_database": payments_total,
        "missing_on_leader": sorted(accepted - found.keys()),
        "not_posted": sorted(r[0] for r in rows if r[1] not in ("accepted", "changed")),
        "posted_other_than_once": sorted(
            r[0] for r in rows if r[1] in ("accepted", "changed") and paid_bills.get(r[3], 0) != r[2]
        ),
        "ledger_sum": ledger_sum,
        "posted_sum": posted_sum,
        "callbacks": {
            "deliveries": len(deliveries),
            "delivered": sum(1 for e, s in deliveries if s == "delivered" and receiver.events.get(e)),
            "not_delivered": sum(1 for _, s in deliveries if s != "delivered"),
            "repeated_near_a_fault": len(near_fault),
            "repeated_elsewhere": len(set(repeated) - set(near_fault)),
            "payments_without_callback": len(accepted - with_callback),
        },
        "deadline_seconds": deadline,
        "latency_seconds": {
            "p50": round(common.percentile(latencies, 50), 3),
            "p99": round(common.percentile(latencies, 99), 3),
            "max": round(latencies[-1], 2) if latencies else None,
        },
        "over_deadline": sum(1 for a in answers if a.status and a.received - a.sent > deadline),
        "status_500": sum(n for s, n in statuses.items() if s.endswith(" 500")),
        "no_answer": sum(n for s, n in statuses.items() if s.endswith(" 0")),
        "status_503_without_retry_after": sum(1 for a in answers if a.status == 503 and not a.retry_after),
        "health": health_figures(run["health"], start),
        "pair_again_seconds": run["pair_again_seconds"],
    }


def report(f: dict) -> None:
    print("steps: " + "; ".join(f"{at} s {step} {detail}".strip() for step, at, detail in f["events"]))
    print(f"answers: {f['statuses']}; {f['flows_not_sent_client_busy']} not sent (every partner thread busy)")
    for step, p in f["phases"].items():
        print(
            f"{step}: first 202 after {p['first_202_after_seconds']} s, longest without a 202"
            f" {p['longest_without_202_seconds']} s, slowest answer {p['slowest_answer_seconds']} s;"
            f" {p['statuses']}"
        )
    lat = f["latency_seconds"]
    print(
        f"latency: p50 {lat['p50']} s, p99 {lat['p99']} s, max {lat['max']} s (deadline {f['deadline_seconds']} s)"
    )
    cb = f["callbacks"]
    print(
        f"leader: {f['accepted_202'] - len(f['missing_on_leader'])} of {f['accepted_202']} payments answered"
        f" 202 ({f['payments_in_database']} in all), {len(f['not_posted'])} not posted,"
        f" {len(f['posted_other_than_once'])} posted other than once; ledger {f['ledger_sum']} = posted"
        f" {f['posted_sum']}"
    )
    print(
        f"callbacks: {cb['deliveries']} deliveries, {cb['delivered']} delivered, {cb['not_delivered']} not;"
        f" {cb['repeated_near_a_fault']} sent again near a fault, {cb['repeated_elsewhere']} elsewhere"
    )
    print(f"/health: {f['health']}")
    print(f"leader and synchronous standby again {f['pair_again_seconds']} s after the traffic")


def checks(f: dict) -> list[tuple[str, bool, str]]:
    cb = f["callbacks"]
    out = [
        (
            "every 202 payment is on the leader",
            not f["missing_on_leader"],
            f"{len(f['missing_on_leader'])} missing of {f['accepted_202']}",
        ),
        (
            "each final and posted exactly once, the ledger adds up",
            not f["not_posted"] and not f["posted_other_than_once"] and f["ledger_sum"] == f["posted_sum"],
            f"{len(f['not_posted'])} not posted, {len(f['posted_other_than_once'])} other than once,"
            f" ledger {f['ledger_sum']} = {f['posted_sum']}",
        ),
        (
            "every callback delivered (a repeat only near a fault)",
            cb["not_delivered"] == 0
            and cb["delivered"] == cb["deliveries"]
            and cb["repeated_elsewhere"] == 0
            and cb["payments_without_callback"] == 0,
            f"{cb['delivered']} of {cb['deliveries']} delivered, {cb['repeated_elsewhere']} repeated elsewhere",
        ),
        (
            "no 500, every 503 with Retry-After, every request answered",
            f["status_500"] == 0 and f["status_503_without_retry_after"] == 0 and f["no_answer"] == 0,
            f"{f['status_500']} x 500, {f['status_503_without_retry_after']} x 503 without Retry-After,"
            f" {f['no_answer']} without an answer",
        ),
        (
            f"no request over the deadline ({f['deadline_seconds']} s)",
            f["over_deadline"] == 0,
            f"{f['over_deadline']} over; slowest {f['latency_seconds']['max']} s",
        ),
        (
            f"/health within {HEALTH_LIMIT_SECONDS} s every time",
            f["health"]["slowest_seconds"] < HEALTH_LIMIT_SECONDS
            and f["health"]["statuses"].get("0", 0) == 0,
            f"slowest {f['health']['slowest_seconds']} s of {f['health']['samples']}",
        ),
        (
            "a leader and a synchronous standby again (both lost nodes back)",
            f["pair_again_seconds"] is not None,
            f"after {f['pair_again_seconds']} s",
        ),
    ]
    for step, p in f["phases"].items():
        longest = p["longest_without_202_seconds"]
        out.append(
            (
                f"{step}: payments accepted again within {RECOVERY_LIMIT_SECONDS:.0f} s",
                longest is not None and longest <= RECOVERY_LIMIT_SECONDS,
                f"longest without a 202: {longest} s",
            )
        )
    return out
