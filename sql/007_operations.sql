-- Operating the service (contract section 13): per-partner rate limits, and what
-- /metrics reads at scrape time without scanning every payment.

-- Token buckets, one per partner: PARTNER_RATE_LIMIT tokens a second, as many at most.
-- Unlogged: a crash forgets the buckets (everyone starts full), nothing else.
create unlogged table rate_bucket (
    partner_code text primary key,
    tokens       double precision not null,
    updated_at   timestamptz not null
);
comment on table rate_bucket is 'Per-partner token buckets of PARTNER_RATE_LIMIT (unlogged: emptied by a crash).';

-- Take one token of partner p_partner's bucket (p_rate a second, p_rate at most):
-- 0 when taken, else the seconds until the next token. Runs as a statement of its own
-- (autocommit), so the bucket row is locked only for that statement.
create function take_rate_token_v1(p_partner text, p_rate double precision) returns double precision
language plpgsql volatile as $$
declare
    v_now constant timestamptz := clock_timestamp();
    v_tokens double precision;
begin
    if p_rate <= 0 then
        return 0;
    end if;
    insert into rate_bucket as b (partner_code, tokens, updated_at) values (p_partner, p_rate - 1, v_now)
    on conflict (partner_code) do update
        set tokens = least(p_rate, b.tokens + extract(epoch from v_now - b.updated_at)::float8 * p_rate) - 1,
            updated_at = v_now
        where least(p_rate, b.tokens + extract(epoch from v_now - b.updated_at)::float8 * p_rate) >= 1;
    if found then
        return 0;
    end if;
    select least(p_rate, tokens + extract(epoch from v_now - updated_at)::float8 * p_rate) into v_tokens
      from rate_bucket where partner_code = p_partner;
    return greatest((1 - v_tokens) / p_rate, 0.001);
end
$$;

-- Payments by status, kept by a trigger in 16 shards per status (so concurrent payments
-- rarely wait for one another's counter row): /metrics sums 80 rows instead of counting
-- every payment.
create table payment_status_count (
    status text not null,
    shard  smallint not null,
    n      bigint not null default 0,
    primary key (status, shard)
);
insert into payment_status_count (status, shard)
select s, g from unnest(array['created', 'accepted', 'changed', 'rejected']) as s, generate_series(0, 15) as g;
update payment_status_count c set n = x.n
  from (select status, count(*) as n from payment group by status) x
 where c.status = x.status and c.shard = 0;
comment on table payment_status_count is 'Payments per status (sum n over shard), kept by the trigger count_payment_status_v1.';

create function count_payment_status_v1() returns trigger
language plpgsql as $$
declare
    v_shard constant smallint := (new.id % 16)::smallint;
begin
    if tg_op = 'UPDATE' then
        if old.status = new.status then
            return null;
        end if;
        update payment_status_count set n = n - 1 where status = old.status and shard = v_shard;
    end if;
    update payment_status_count set n = n + 1 where status = new.status and shard = v_shard;
    return null;
end
$$;
create trigger payment_status_count after insert or update of status on payment
    for each row execute function count_payment_status_v1();

-- The attention view, one indexed branch per reason instead of a lateral join over
-- every payment (3 s on three million payments before, milliseconds now).
create index payment_created on payment (accepted_at) where status = 'created';
create index payment_changed_rejected on payment (status) where status in ('changed', 'rejected');
create index webhook_delivery_failed on webhook_delivery (payment_id) where status = 'failed';

-- The rule, once: which payments need an operator, why, since when and what to do.
create view payment_attention as
    select p.id, 'changed'::text as reason, p.posted_at as since,
           'paid ' || coalesce(p.paid_total, 0) || ' of amo ' || p.amount
           || coalesce(', not paid: ' || nullif(array_to_string(p.problem_periods, ' '), ''), '') as detail,
           'check with the partner; reverse or settle the difference'::text as action
    from payment p where p.status = 'changed'
    union all
    select p.id, 'rejected', p.posted_at, 'every period was paid before: ' || array_to_string(p.periods, ' '),
           'refund the customer through the partner'
    from payment p where p.status = 'rejected'
    union all
    select p.id, 'stuck', p.stuck_at, p.stuck_reason,
           'fix the cause, then: flask --app wsgi payment requeue ' || p.nob
    from payment p where p.stuck_at is not null and p.status = 'created'
    union all
    select p.id, 'slow', p.accepted_at, 'in progress for ' || date_trunc('second', now() - p.accepted_at),
           'check the worker and the queue; flask --app wsgi payment requeue ' || p.nob
    from payment p
    where p.status = 'created' and p.stuck_at is null and p.accepted_at < now() - interval '10 minutes'
    union all
    select w.payment_id, 'webhook failed', coalesce(w.last_attempt_at, w.created_at),
           w.event || ' to ' || w.url || ' after ' || w.attempts || ' attempts: ' || coalesce(w.last_error, '?'),
           'flask --app wsgi webhook resend ' || p.nob
    from webhook_delivery w join payment p on p.id = w.payment_id
    where w.status = 'failed';
comment on view payment_attention is
    'The rule behind payments_needing_attention: payment id, reason, since, detail, action (counted by /metrics).';

create or replace view payments_needing_attention as
select
    a.reason,
    (p.accepted_at at time zone 'Asia/Jakarta')::date as tanggal,
    p.partner_code as pop,
    p.nob,
    p.pid,
    p.customer_id as nopel,
    p.status,
    case when p.reversed_at is null then 0 else 1 end as rev,
    p.amount as jumlah_bayar,
    p.paid_total as jumlah_tagihan,
    p.problem_periods as periode_masalah,
    a.since,
    a.detail,
    a.action
-- one index look-up per row needing attention, never a scan of every payment (offset 0
-- keeps the planner from turning the lateral look-up back into a join over all payments)
from payment_attention a cross join lateral (select * from payment where payment.id = a.id offset 0) p;

-- The queue's jobs that are not done, and their age, without scanning finished jobs.
create index procrastinate_jobs_unfinished on procrastinate_jobs (queue_name, status)
    where status <> 'succeeded';
