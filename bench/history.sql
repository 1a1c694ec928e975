-- bench/common.py seed_history: COUNT posted payments of an earlier DAY of PARTNER, with
-- their inquiries, periods, posting jobs and delivered callbacks.
with i as (
    insert into inquiry (token, partner_code, customer_id, snapshot, created_at, expires_at)
    select md5('history' || n), %(partner)s, (800000000000 + n)::text, '{}',
           %(day)s + n * interval '1 second', %(day)s + n * interval '1 second' + interval '15 minutes'
    from generate_series(1, %(count)s) as n
    returning token, customer_id, created_at
),
p as (
    insert into payment (partner_code, pid, customer_id, inquiry_token, amount, periods, merchant, pat,
                         nob, accepted_at, status, posted_at, paid_total, paid_periods, problem_periods)
    select %(partner)s, 'history-' || i.token, i.customer_id, i.token, 48800, '{202001}', '1',
           upper(substr(i.token, 1, 20)), %(partner)s || lpad(row_number() over ()::text, 10, '0'),
           i.created_at, 'accepted', i.created_at + interval '1 second', 48800, '{202001}', '{}'
    from i
    returning id, customer_id, accepted_at
),
pp as (
    insert into payment_period (payment_id, customer_id, period, paid)
    select id, customer_id, '202001', true from p
),
-- each payment's posting job, done, as the queue keeps them
j as (
    insert into procrastinate_jobs (queue_name, task_name, args, status, attempts, scheduled_at)
    select 'posting', 'posting.post_payment', jsonb_build_object('payment_id', id), 'succeeded', 1, null
    from p
),
-- and its two callbacks (created, accepted), each delivered at the first attempt
d as (
    insert into webhook_delivery (payment_id, event, url, body, status, attempts, created_at,
                                  first_attempt_at, last_attempt_at, delivered_at)
    select p.id, e.event, 'http://127.0.0.1:9/callback', '{}', 'delivered', 1,
           p.accepted_at, p.accepted_at, p.accepted_at, p.accepted_at
    from p cross join (values ('created'), ('accepted')) as e(event)
    returning id, url, created_at
)
insert into webhook_attempt (delivery_id, attempted_at, url, http_status, duration_ms)
select id, created_at, url, 200, 3 from d
