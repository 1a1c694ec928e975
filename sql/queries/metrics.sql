-- What /metrics reads at scrape time; each statement uses an index or a small table,
-- so a scrape stays fast on millions of payments and jobs.

-- jobs --
-- Unfinished jobs per queue and status (succeeded jobs are not counted: they only grow).
select queue_name, status::text as status, count(*) as n
from procrastinate_jobs where status <> 'succeeded'
group by queue_name, status

-- oldest_todo --
-- Per queue, how long the oldest job due to run has been waiting (since it was deferred,
-- or since its retry was due).
select j.queue_name, extract(epoch from now() - min(coalesce(j.scheduled_at, e.at)))::float8 as age
from procrastinate_jobs j
join procrastinate_events e on e.job_id = j.id and e.type = 'deferred'
where j.status = 'todo' and coalesce(j.scheduled_at, e.at) <= now()
group by j.queue_name

-- payments --
select status, sum(n)::bigint as n from payment_status_count group by status

-- attention --
select reason, count(*) as n from payment_attention group by reason

-- oldest_due_callback --
-- How long the oldest callback due to be sent has waited (since it was recorded, or since
-- its retry was due): the dispatchers' lag. Pending deliveries only (a partial index).
select extract(epoch from now() - min(coalesce(next_attempt_at, created_at)))::float8 as age
from webhook_delivery
where status = 'pending' and coalesce(next_attempt_at, created_at) <= now()

-- webhooks --
-- Deliveries not delivered (delivered ones only grow, like succeeded jobs), of live payments
-- (the sandbox is left out of the live metrics).
select d.status, count(*) as n
from webhook_delivery d join payment p on p.id = d.payment_id
where d.status <> 'delivered' and not p.sandbox
group by d.status
