"""The failover drill's figures, its report and its checks (scripts/failover_drill.py):
what the run's answers, the new primary and the webhook receiver say."""

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

#: Web and worker must be back within this many seconds of the promotion.
RECOVERY_LIMIT_SECONDS = 30.0
#: /health must answer within this.
HEALTH_LIMIT_SECONDS = 1.0


def figures(url: str, run: dict, receiver: Receiver) -> dict:
    answers: list[Answer] = run["traffic"].answers
    promoted, killed = run["promoted"], run["killed"]
    statuses = Counter(f"{a.kind} {a.status}" for a in answers)
    accepted = {a.pid for a in answers if a.kind == "payment" and a.status == 202}
    first_2xx = min(
        (a.received for a in answers if a.kind == "payment" and a.status == 202 and a.received > promoted),
        default=None,
    )
    gap = [a for a in answers if a.received >= killed and a.sent <= (first_2xx or float("inf"))]
    with psycopg.connect(url, autocommit=True) as conn:
        recovery = conn.execute("select pg_is_in_recovery()").fetchone()[0]
        rows = conn.execute(
            "select pid, status, paid_total, cardinality(paid_periods), nob from payment where pid = any(%s)",
            (sorted(accepted),),
        ).fetchall()
        # bills paid per payment (the ledger shares the database here)
        paid_bills = dict(
            conn.execute(
                "select paid_by, count(*) from bill where paid_by is not null group by paid_by"
            ).fetchall()
        )
        ledger_sum = conn.execute(
            "select coalesce(sum(total), 0)::bigint from bill where paid_by is not null"
        ).fetchone()[0]
        posted_sum = conn.execute(
            "select coalesce(sum(paid_total), 0)::bigint from payment where status in ('accepted', 'changed')"
            " and reversed_at is null"
        ).fetchone()[0]
        deliveries = conn.execute(
            "select d.event_id::text, d.status from webhook_delivery d join payment p on p.id = d.payment_id"
            " where p.pid = any(%s)",
            (sorted(accepted),),
        ).fetchall()
        callbacks_of = dict(
            conn.execute(
                "select p.pid, count(d.id) from payment p left join webhook_delivery d on d.payment_id = p.id"
                " where p.pid = any(%s) group by p.pid",
                (sorted(accepted),),
            ).fetchall()
        )
        attention = conn.execute(
            "select reason, count(*) from payments_needing_attention group by reason"
        ).fetchall()
        first_job = conn.execute(
            "select min(at) from procrastinate_events where type = 'succeeded' and at > %s",
            (run["promoted_at"],),
        ).fetchone()[0]
    found = {r[0]: r for r in rows}
    missing = sorted(accepted - found.keys())
    not_posted = sorted(r[0] for r in rows if r[1] not in ("accepted", "changed"))
    twice = sorted(r[0] for r in rows if r[1] in ("accepted", "changed") and paid_bills.get(r[4], 0) != r[3])
    delivered_once = sum(1 for e, s in deliveries if s == "delivered" and receiver.events.get(e, 0) >= 1)
    # At least once: an attempt in flight at the kill whose outcome the old primary never
    # recorded is sent again, with the same X-Event-Id (the receiver drops it). Any other
    # repeat is a fault.
    repeated = [e for e, n in receiver.events.items() if n > 1]
    in_flight = [e for e in repeated if killed - 2 <= receiver.first[e] <= promoted]
    duplicated = sorted(set(repeated) - set(in_flight))
    pending = sum(1 for _, s in deliveries if s in ("pending", "failed"))
    unaccounted = sum(1 for e, s in deliveries if s == "delivered" and receiver.events.get(e, 0) == 0)
    without_callback = sorted(p for p in accepted if not callbacks_of.get(p))
    web_recovery = first_2xx - promoted if first_2xx else None
    worker_recovery = (first_job - run["promoted_at"]).total_seconds() if first_job else None
    gap_statuses = Counter(a.status for a in gap)
    bad_503 = sum(1 for a in answers if a.status == 503 and not a.retry_after)
    before = sorted(
        (a.received - a.sent) * 1000
        for a in answers
        if a.kind == "payment" and a.status == 202 and a.received < killed
    )
    deadline = settings.load()["REQUEST_DEADLINE_SECONDS"]
    trap = None
    if "cleared" in run:  # the standby promoted by hand still named a synchronous standby
        cleared = run["cleared"]
        # answered between the promotion and the clear; sent then (answered whenever)
        during = [a for a in answers if promoted <= a.received < cleared and a.sent >= killed]
        sent = [a for a in answers if promoted <= a.sent < cleared]
        after = min(
            (a.received for a in answers if a.kind == "payment" and a.status == 202 and a.sent >= cleared),
            default=None,
        )
        said = [
            s
            for s in run["health"]
            if promoted <= s.sent and s.sent + s.seconds <= cleared and s.commit == "unavailable"
        ]
        trap = {
            "promotion_to_clear_seconds": round(cleared - promoted, 1),
            "statuses_before_the_clear": dict(Counter(f"{a.kind} {a.status}" for a in during)),
            "statuses_sent_before_the_clear": dict(Counter(f"{a.kind} {a.status}" for a in sent)),
            "health_said_cannot_commit": len(said),
            "first_202_after_the_clear_seconds": None if after is None else round(after - cleared, 2),
        }
    return {
        "trap": trap,
        "deadline_seconds": deadline,
        "slowest_answer_seconds": round(
            max((a.received - a.sent for a in answers if a.status), default=0.0), 2
        ),
        "over_deadline": sum(1 for a in answers if a.status and a.received - a.sent > deadline),
        "health": health_figures(run["health"], run["start"]),
        "standby": "asynchronous" if run["asynchronous"] else "synchronous",
        "killed_at_seconds": round(killed - run["start"], 1),
        "payment_latency_ms_before_kill": {
            "p50": round(common.percentile(before, 50), 1),
            "p99": round(common.percentile(before, 99), 1),
        },
        "payments_sent": sum(1 for a in answers if a.kind == "payment"),
        "statuses": dict(sorted(statuses.items())),
        "gap_statuses": {str(k): v for k, v in sorted(gap_statuses.items())},
        "accepted_202": len(accepted),
        "missing_on_new_primary": missing,
        "not_posted": not_posted,
        "posted_other_than_once": twice,
        "ledger_sum": ledger_sum,
        "posted_sum": posted_sum,
        "callbacks": {
            "deliveries": len(deliveries),
            "delivered_once": delivered_once,
            "pending_or_failed": pending,
            "duplicated": len(duplicated),
            "repeated_in_flight_at_kill": len(in_flight),
            "delivered_but_not_received": unaccounted,
            "payments_without_delivery": len(without_callback),
        },
        "payments_needing_attention": dict(attention),
        "new_primary_in_recovery": recovery,
        "kill_to_promotion_seconds": round(promoted - killed, 2),
        "web_recovery_seconds": None if web_recovery is None else round(web_recovery, 2),
        "worker_recovery_seconds": None if worker_recovery is None else round(worker_recovery, 2),
        "status_500": sum(n for s, n in statuses.items() if s.endswith(" 500")),
        "no_answer": sum(n for s, n in statuses.items() if s.endswith(" 0")),
        "status_503_without_retry_after": bad_503,
    }


def report(f: dict) -> None:
    def counts(prefix: str) -> str:
        found = {k.split()[1]: n for k, n in f["statuses"].items() if k.startswith(prefix)}
        return ", ".join(f"{n} x {'no answer' if s == '0' else s}" for s, n in found.items())

    cb = f["callbacks"]
    lat = f["payment_latency_ms_before_kill"]
    print(f"standby: {f['standby']}")
    print(f"inquiries: {counts('inquiry ')}")
    print(f"payments:  {counts('payment ')}")
    on, local = f["commit_ms"]["on"], f["commit_ms"]["local"]
    print(
        f"one commit: synchronous_commit=on p50 {on['p50']} ms, p99 {on['p99']} ms;"
        f" local (no wait for the standby) p50 {local['p50']} ms, p99 {local['p99']} ms"
    )
    print(f"payment latency before the kill: p50 {lat['p50']} ms, p99 {lat['p99']} ms")
    print(
        f"primary killed at {f['killed_at_seconds']} s; standby promoted {f['kill_to_promotion_seconds']} s later"
    )
    gap = ", ".join(f"{n} x {s}" for s, n in f["gap_statuses"].items())
    print(f"answers from the kill to the first 202 after the promotion: {gap}")
    print(f"web:    first 202 {f['web_recovery_seconds']} s after the promotion")
    print(f"worker: first job done {f['worker_recovery_seconds']} s after the promotion")
    print(
        f"slowest answer {f['slowest_answer_seconds']} s (deadline {f['deadline_seconds']} s); /health: {f['health']}"
    )
    if f["trap"]:
        print(f"trap: {f['trap']}")
    print(
        f"new primary: {f['accepted_202'] - len(f['missing_on_new_primary'])} of {f['accepted_202']} payments"
        f" answered 202, {len(f['not_posted'])} not posted, {len(f['posted_other_than_once'])} posted other than"
        f" once; ledger {f['ledger_sum']} = posted {f['posted_sum']}"
    )
    print(
        f"callbacks: {cb['deliveries']} deliveries, {cb['delivered_once']} delivered,"
        f" {cb['pending_or_failed']} pending, {cb['duplicated']} duplicated"
        f" ({cb['repeated_in_flight_at_kill']} sent again with their X-Event-Id: in flight at the kill);"
        f" payments_needing_attention: {f['payments_needing_attention'] or 'none'}"
    )


def checks(f: dict) -> list[tuple[str, bool, str]]:
    cb = f["callbacks"]
    trap = []
    if f["trap"]:
        t = f["trap"]
        trap = [
            (
                "the trap: /health said the database cannot commit",
                t["health_said_cannot_commit"] > 0,
                f"{t['health_said_cannot_commit']} answers said so before the clear",
            ),
            (
                f"payments flow within {RECOVERY_LIMIT_SECONDS:.0f} s of the clear",
                t["first_202_after_the_clear_seconds"] is not None
                and t["first_202_after_the_clear_seconds"] <= RECOVERY_LIMIT_SECONDS,
                f"first 202 {t['first_202_after_the_clear_seconds']} s after; before it: {t['statuses_before_the_clear']}",
            ),
        ]
    return trap + [
        (
            f"no request over the deadline ({f['deadline_seconds']} s)",
            f["over_deadline"] == 0,
            f"{f['over_deadline']} over; slowest {f['slowest_answer_seconds']} s",
        ),
        (
            f"/health within {HEALTH_LIMIT_SECONDS} s every time",
            f["health"]["slowest_seconds"] < HEALTH_LIMIT_SECONDS
            and f["health"]["statuses"].get("0", 0) == 0,
            f"slowest {f['health']['slowest_seconds']} s of {f['health']['samples']}; {f['health']['statuses']}",
        ),
        (
            "every 202 payment is on the new primary",
            not f["missing_on_new_primary"],
            f"{len(f['missing_on_new_primary'])} missing of {f['accepted_202']}",
        ),
        (
            "each posted exactly once",
            not f["not_posted"] and not f["posted_other_than_once"],
            f"{len(f['not_posted'])} not posted, {len(f['posted_other_than_once'])} posted other than once",
        ),
        (
            "ledger sum equals posted sum",
            f["ledger_sum"] == f["posted_sum"],
            f"{f['ledger_sum']} = {f['posted_sum']}",
        ),
        (
            "every callback delivered once (per X-Event-Id) or visibly pending",
            cb["duplicated"] == 0
            and cb["delivered_but_not_received"] == 0
            and cb["payments_without_delivery"] == 0
            and cb["delivered_once"] + cb["pending_or_failed"] == cb["deliveries"],
            f"{cb['delivered_once']} delivered, {cb['pending_or_failed']} pending, {cb['duplicated']} duplicated,"
            f" {cb['repeated_in_flight_at_kill']} in flight at the kill sent again",
        ),
        (
            "web recovered within 30 s of the promotion",
            f["web_recovery_seconds"] is not None and f["web_recovery_seconds"] <= RECOVERY_LIMIT_SECONDS,
            f"first 202 after {f['web_recovery_seconds']} s",
        ),
        (
            "worker recovered within 30 s of the promotion",
            f["worker_recovery_seconds"] is not None
            and f["worker_recovery_seconds"] <= RECOVERY_LIMIT_SECONDS,
            f"first job done after {f['worker_recovery_seconds']} s",
        ),
        (
            "no 500, every 503 with Retry-After",
            f["status_500"] == 0 and f["status_503_without_retry_after"] == 0 and f["no_answer"] == 0,
            f"{f['status_500']} x 500, {f['status_503_without_retry_after']} x 503 without Retry-After, "
            f"{f['no_answer']} without an answer; during the gap: {f['gap_statuses']}",
        ),
    ]
