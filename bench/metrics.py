"""/metrics and the operator views on a large database: a scrape must stay under 50 ms
with three million payments.

Creates a fresh database (on ``DATABASE_URL``'s server, else the embedded one),
migrates it and fills it in SQL with ``--payments`` payments over 10 partners
(the newest 600 in progress, 0.15 % changed, 0.05 % rejected, one in 60,000 stuck,
the rest accepted), as many posting jobs (the newest 600 waiting, the rest done), and
a webhook delivery for one payment in ten (one in 500 of those failed). Each
statement /metrics runs is timed on its own too. Then it times, each ``--repeat`` times: a whole scrape through
the app (``GET /metrics``), the ``payments_needing_attention`` view, and the same
view as migration 004 defined it (one lateral join over every payment), for the
before/after figure. The database is dropped at the end.

    .venv/bin/python bench/metrics.py [--payments 3000000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import psycopg  # noqa: E402

from pdam import create_app  # noqa: E402
from pdam.web.metrics import Q as metrics_queries  # noqa: E402

TARGET_MS = 50.0
TOKEN = "bench-metrics"

SEED = """
insert into partner (code, name, webhook_secret)
select lpad(g::text, 2, '0'), 'BENCH' || g, 'pdam1.' || md5(g::text) || md5(g::text) from generate_series(10, 19) g;

alter table payment disable trigger payment_status_count;
insert into payment (partner_code, pid, customer_id, inquiry_token, amount, periods, merchant, pat, nob,
                     accepted_at, status, posted_at, paid_total, paid_periods, problem_periods,
                     stuck_at, stuck_reason, callback_url)
select code, 'p' || i, (700000000000 + i)::text, md5('i' || i), 97600, '{202401,202402}', 'B001',
       upper(substr(md5('p' || i), 1, 20)), code || lpad(i::text, 10, '0'),
       now() - (%(n)s - i) * interval '100 ms',
       st,
       case when st = 'created' then null else now() - (%(n)s - i) * interval '100 ms' + interval '1 s' end,
       case when st = 'created' then null when st = 'rejected' then 0 when st = 'changed' then 48800 else 97600 end,
       case when st = 'created' then null when st = 'rejected' then '{}' when st = 'changed' then '{202401}'
            else '{202401,202402}' end::text[],
       case when st = 'created' then null when st = 'rejected' then '{202401,202402}'
            when st = 'changed' then '{202402}' else '{}' end::text[],
       case when st = 'created' and i %% 60000 = 0 then now() - interval '1 hour' end,
       case when st = 'created' and i %% 60000 = 0 then 'attempt 20: OperationalError' end,
       case when i %% 10 = 0 then 'https://partner.example/callback' end
from (select i, (10 + i %% 10)::text as code,
             case when i > %(n)s - 600 or i %% 60000 = 0 then 'created' when i %% 2000 < 3 then 'changed'
                  when i %% 2000 < 4 then 'rejected' else 'accepted' end as st
      from generate_series(1, %(n)s) i) x;
alter table payment enable trigger payment_status_count;
update payment_status_count c set n = coalesce(x.n, 0)
  from (select status, count(*) as n from payment group by status) x
 where c.status = x.status and c.shard = 0;

insert into webhook_delivery (payment_id, event, url, body, status, attempts, created_at, first_attempt_at,
                              last_attempt_at, delivered_at, last_error)
select id, 'accepted', callback_url, '{}', case when id %% 5000 = 0 then 'failed' else 'delivered' end, 1,
       accepted_at, accepted_at, accepted_at,
       case when id %% 5000 = 0 then null else accepted_at end,
       case when id %% 5000 = 0 then 'HTTP 500' end
from payment where callback_url is not null;

insert into procrastinate_jobs (queue_name, task_name, args, status, attempts)
select 'posting', 'posting.post_payment', jsonb_build_object('payment_id', i),
       case when i > %(n)s - 600 then 'todo' else 'succeeded' end::procrastinate_job_status, 1
from generate_series(1, %(n)s) i;
insert into procrastinate_events (job_id, type, at)
select id, 'deferred', now() - interval '2 s' from procrastinate_jobs where status = 'todo';
analyze;
"""

#: The view as migration 004 defined it (before the indexed branches of migration 007).
OLD_VIEW_COUNT = """
select a.reason, count(*) from payment p join lateral (
    select 'changed'::text as reason where p.status = 'changed'
    union all select 'rejected' where p.status = 'rejected'
    union all select 'stuck' where p.stuck_at is not null and p.status = 'created'
    union all select 'slow' where p.status = 'created' and p.stuck_at is null
                                  and p.accepted_at < now() - interval '10 minutes'
    union all select 'webhook failed' from webhook_delivery w where w.payment_id = p.id and w.status = 'failed'
) a on true group by a.reason
"""
NEW_VIEW_COUNT = "select reason, count(*) from payments_needing_attention group by reason"


def timed(fn, repeat: int) -> list[float]:
    fn()  # warm the caches once
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return sorted(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--payments", type=int, default=3_000_000)
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args()
    with common.bench_database() as (url, where):
        common.log(f"database: {where}; seeding {args.payments} payments")
        t = time.perf_counter()
        # Client-side binding: the seed is several statements in one string.
        with psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
            conn.execute("set statement_timeout = 0")
            conn.execute(SEED, {"n": args.payments})
            counts = dict(conn.execute("select status, count(*) from payment group by 1").fetchall())
        common.log(f"seeded in {time.perf_counter() - t:.0f} s: {counts}")
        app = create_app({"DATABASE_URL": url, "METRICS_TOKEN": TOKEN})
        client = app.test_client()

        def scrape():
            res = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert res.status_code == 200, res.data

        with psycopg.connect(url) as conn:
            old = timed(lambda: conn.execute(OLD_VIEW_COUNT).fetchall(), max(3, args.repeat // 5))
            new = timed(lambda: conn.execute(NEW_VIEW_COUNT).fetchall(), args.repeat)
            statements = {
                name: timed(lambda sql=sql: conn.execute(sql).fetchall(), args.repeat)
                for name, sql in ((n, q.text) for n, q in metrics_queries.items())
            }
        scrapes = timed(scrape, args.repeat)
        app.extensions["pdam.runtime"].dispose()
        settings = common.server_settings(url)
    print(f"\n{common.machine_description()}\n{where} ({settings}), {args.payments} payments\n")
    print(f"{'measure':<58} {'median ms':>9} {'max ms':>8}")
    for name, values in (
        ("payments_needing_attention by reason, as in migration 004", old),
        ("payments_needing_attention by reason (indexed branches)", new),
        *((f"  statement {name}", values) for name, values in statements.items()),
        ("GET /metrics, whole scrape through the app", scrapes),
    ):
        print(f"{name:<58} {statistics.median(values):>9.1f} {values[-1]:>8.1f}")
    ok = statistics.median(scrapes) < TARGET_MS
    print(
        f"\n{'PASS' if ok else 'MISS'}  scrape median < {TARGET_MS:.0f} ms: {statistics.median(scrapes):.1f}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
