-- The sandbox (contract 14.1): sandbox credentials, and sandbox inquiries and payments in
-- the same tables as live ones, marked by ``sandbox``. What keeps the two apart is here,
-- not only in the code:
--   * a credential's side is its row's (api_token.sandbox, snap_client.sandbox); every
--     statement of a request is keyed by (partner, sandbox);
--   * a partner's pid, inquiry reference and SNAP client are unique per side;
--   * a sandbox nob carries its WIB month + 50 (51-62; a live one 01-12): the check below
--     ties the form to the side, and unique (nob) makes a collision impossible;
--   * the ledger's bills can never be paid by a sandbox nob (bill_paid_by_live, when the
--     ledger is in this database: a paid_by whose month field is 51-62; other channels'
--     numbers stay free), and sandbox posting reads the fixed test customers of
--     sandbox_customer_bills_v1, never the bill table;
--   * the live views (reconciliation, daily_recap, payments_needing_attention) and the
--     metrics' counters leave sandbox payments out; sandbox_reconciliation is the
--     sandbox's /audit.

alter table api_token add column sandbox boolean not null default false;
comment on column api_token.sandbox is 'A sandbox token (token issue --sandbox): sees and makes sandbox data only.';

alter table snap_client add column sandbox boolean not null default false;
alter table snap_client drop constraint snap_client_partner_code_key;
alter table snap_client add constraint snap_client_partner_side unique (partner_code, sandbox);
comment on column snap_client.sandbox is 'A sandbox client (snap register --sandbox): sees and makes sandbox data only.';

alter table inquiry add column sandbox boolean not null default false;
alter table inquiry drop constraint inquiry_partner_reference;
alter table inquiry add constraint inquiry_partner_reference unique (partner_code, sandbox, reference);
comment on column inquiry.sandbox is 'Made with a sandbox credential, of a sandbox test customer.';

alter table payment add column sandbox boolean not null default false;
alter table payment drop constraint payment_partner_code_pid_key;
alter table payment add constraint payment_partner_pid unique (partner_code, sandbox, pid);
alter table payment add constraint payment_nob_side check ((substr(nob, 5, 2) between '51' and '62') = sandbox);
create index payment_sandbox on payment (partner_code, accepted_at) where sandbox;
comment on column payment.sandbox is
    'A sandbox payment: its nob''s month is the WIB month + 50, it is posted against the sandbox''s '
    'test customers, never the ledger, and the live views and metrics leave it out.';

-- One live payment per bill: per customer and period live, per partner, customer and
-- period in the sandbox (each partner's sandbox is its own). scope: '' live, the partner
-- code for a sandbox payment's periods.
alter table payment_period add column scope text not null default '';
drop index payment_period_live;
create unique index payment_period_live on payment_period (customer_id, period, scope) where live;
comment on column payment_period.scope is '''''  for a live payment; the partner code for a sandbox payment (its own sandbox).';

create table sandbox_nob_counter (
    partner_code  text not null references partner,
    day           date not null,
    last_value    integer not null check (last_value between 1 and 9999),
    primary key (partner_code, day)
);
comment on table sandbox_nob_counter is 'nob_counter of the sandbox: its nobs carry the WIB month + 50.';

-- next_nob_v1, per side: a sandbox nob is partner + YY + (MM + 50) + DD + sequence.
create function next_nob_v2(p_partner text, p_day date, p_sandbox boolean) returns text
language plpgsql volatile as $$
declare
    v_nob text;
begin
    if not p_sandbox then
        return next_nob_v1(p_partner, p_day);
    end if;
    insert into sandbox_nob_counter (partner_code, day, last_value) values (p_partner, p_day, 1)
    on conflict (partner_code, day) do update set last_value = sandbox_nob_counter.last_value + 1
        where sandbox_nob_counter.last_value < 9999
    returning p_partner || to_char(day, 'YY') || (extract(month from day)::int + 50)::text
              || to_char(day, 'DD') || lpad(last_value::text, 4, '0') into v_nob;
    return v_nob;
end
$$;

-- The ledger's bills are never paid by a sandbox payment (the table lives in this database
-- unless BILLING_DATABASE_URL names another; there the code never calls it for the sandbox).
do $$
begin
    if to_regclass('public.bill') is not null then
        alter table bill add constraint bill_paid_by_live check (substr(paid_by, 5, 2) not between '51' and '62');
    end if;
end $$;

-- The sandbox's test customers (contract 14.1), the same for every partner: the customer and
-- its bills as customer_bills_v1 gives a ledger's. Bills are the n months up to 2025-11;
-- 990000000002's late fee rises at posting (sandbox_pay_bills_v1).
create function sandbox_customer_bills_v1(p_cid text) returns table (customer_row jsonb, unpaid jsonb)
language sql immutable as $$
    with c(id, name, bills) as (values
        ('990000000001', 'Sandbox Diterima', 2),
        ('990000000002', 'Sandbox Denda Berubah', 1),
        ('990000000003', 'Sandbox Lunas Sebelumnya', 1),
        ('990000000004', 'Sandbox Ledger Sibuk', 1),
        ('990000000005', 'Sandbox Tanpa Tagihan', 0),
        ('990000000006', 'Sandbox Tiga Puluh', 30)
    ),
    b as (
        select c.id, to_char(date '2025-11-01' - make_interval(months => c.bills - g), 'YYYYMM') as period, g
        from c, generate_series(1, c.bills) as g
        where c.id = p_cid
    )
    select jsonb_build_object('id', c.id, 'name', c.name, 'address', 'Jl. Sandbox No. ' || right(c.id, 1),
                              'tariff', '10R - Rumah Tangga 10'),
           coalesce((select jsonb_agg(jsonb_build_object(
                        'bill_no', 'SB' || right(b.id, 1) || b.period, 'period', b.period,
                        'meter_start', 100 * b.g, 'meter_end', 100 * b.g + 10, 'usage', 10,
                        'water', 50000, 'admin_fee', 8000, 'admin_vat', 800,
                        'late_fee', case when b.id = '990000000002' then 10000 else 0 end,
                        'installment', 0,
                        'total', 58800 + case when b.id = '990000000002' then 10000 else 0 end)
                        order by b.period) from b), '[]'::jsonb)
    from c where c.id = p_cid
$$;

-- Posting in the sandbox, in place of pay_bills_v1: the bills of the test customer as paid
-- (id: a fixed number per customer and period), or none (990000000003: paid before), the
-- late fee risen (990000000002), or the error SQLSTATE PDS01 "ledger unreachable" on the
-- first two attempts (990000000004; the job server retries it in SANDBOX_RETRY_SECONDS).
create function sandbox_pay_bills_v1(p_customer text, p_periods text[], p_attempt integer)
returns table (id bigint, bill_no text, period text, water bigint, admin_fee bigint, admin_vat bigint,
               late_fee bigint, installment bigint, total bigint)
language plpgsql volatile as $$
begin
    if p_customer = '990000000004' and p_attempt <= 2 then
        raise exception 'sandbox: the billing ledger is unreachable (test customer %, attempt % of 2)',
            p_customer, p_attempt using errcode = 'PDS01';
    end if;
    if p_customer = '990000000003' then
        return;
    end if;
    return query
    select right(p_customer, 1)::bigint * 1000000 + (e.bill->>'period')::bigint, e.bill->>'bill_no',
           e.bill->>'period', (e.bill->>'water')::bigint, (e.bill->>'admin_fee')::bigint,
           (e.bill->>'admin_vat')::bigint, (e.bill->>'late_fee')::bigint + r.rise,
           (e.bill->>'installment')::bigint, (e.bill->>'total')::bigint + r.rise
    from sandbox_customer_bills_v1(p_customer) c,
         jsonb_array_elements(c.unpaid) as e(bill),
         (select case when p_customer = '990000000002' then 5000 else 0 end::bigint as rise) r
    where e.bill->>'period' = any(p_periods);
end
$$;

-- shown_bills_v1 per side: periods held by a payment in progress of the same scope.
create function shown_bills_v2(p_cid text, p_bills jsonb, p_scope text) returns jsonb
language plpgsql stable as $$
begin
    return (
        select coalesce(jsonb_agg(e.bill order by e.n), '[]'::jsonb)
        from jsonb_array_elements(p_bills) with ordinality as e(bill, n)
        where not exists (
            select 1 from payment_period pp
            where pp.customer_id = p_cid and pp.period = e.bill->>'period' and pp.scope = p_scope
              and pp.live and pp.paid is null
        )
    );
end
$$;

create function save_inquiry_v2(
    p_token text, p_partner text, p_cid text, p_customer jsonb, p_bills jsonb,
    p_now timestamptz, p_expires timestamptz, p_sandbox boolean
) returns table (shown jsonb, saved_token text)
language plpgsql volatile as $$
declare
    v_shown jsonb := shown_bills_v2(p_cid, p_bills, case when p_sandbox then p_partner else '' end);
begin
    if jsonb_array_length(v_shown) = 0 then
        return query select v_shown, null::text;
        return;
    end if;
    insert into inquiry (token, partner_code, customer_id, snapshot, created_at, expires_at, sandbox)
    values (p_token, p_partner, p_cid, jsonb_build_object('customer', p_customer, 'bills', v_shown),
            p_now, p_expires, p_sandbox);
    return query select v_shown, p_token;
end
$$;

-- finish_posting_v1, and a sandbox payment's bills come back at once (its periods stop
-- being live): a partner can run the same test again.
create function finish_posting_v2(
    p_id bigint, p_now timestamptz,
    p_bill_id bigint[], p_bill_no text[], p_period text[], p_water bigint[], p_admin_fee bigint[],
    p_admin_vat bigint[], p_late_fee bigint[], p_installment bigint[], p_total bigint[]
) returns setof payment
language plpgsql volatile as $$
declare
    v_row payment;
begin
    select * into v_row from finish_posting_v1(p_id, p_now, p_bill_id, p_bill_no, p_period, p_water,
                                               p_admin_fee, p_admin_vat, p_late_fee, p_installment, p_total);
    if not found then
        return;
    end if;
    if v_row.sandbox then
        update payment_period set live = false where payment_id = p_id and live;
    end if;
    return next v_row;
end
$$;

-- post_payment_v1 with the attempt, per side: a sandbox payment is posted against the test
-- customers (sandbox_pay_bills_v1), a live one against the ledger (pay_bills_v1).
create function post_payment_v2(p_id bigint, p_now timestamptz, p_attempt integer) returns setof payment
language plpgsql volatile as $$
declare
    v payment;
    b record;
begin
    select * into v from payment where id = p_id for update;
    if not found or v.status <> 'created' then
        return;
    end if;
    if v.sandbox then
        select array_agg(x.id) as id, array_agg(x.bill_no) as bill_no, array_agg(x.period) as period,
               array_agg(x.water) as water, array_agg(x.admin_fee) as admin_fee, array_agg(x.admin_vat) as admin_vat,
               array_agg(x.late_fee) as late_fee, array_agg(x.installment) as installment, array_agg(x.total) as total
          into b from sandbox_pay_bills_v1(v.customer_id, v.periods, p_attempt) x;
    else
        select array_agg(x.id) as id, array_agg(x.bill_no) as bill_no, array_agg(x.period) as period,
               array_agg(x.water) as water, array_agg(x.admin_fee) as admin_fee, array_agg(x.admin_vat) as admin_vat,
               array_agg(x.late_fee) as late_fee, array_agg(x.installment) as installment, array_agg(x.total) as total
          into b from pay_bills_v1(v.nob, v.customer_id, v.periods, p_now) x;
    end if;
    return query select * from finish_posting_v2(
        p_id, p_now, coalesce(b.id, '{}'), coalesce(b.bill_no, '{}'), coalesce(b.period, '{}'),
        coalesce(b.water, '{}'), coalesce(b.admin_fee, '{}'), coalesce(b.admin_vat, '{}'),
        coalesce(b.late_fee, '{}'), coalesce(b.installment, '{}'), coalesce(b.total, '{}'));
end
$$;

-- The metrics' payment counters count live payments only.
create function count_payment_status_v2() returns trigger
language plpgsql as $$
declare
    v_shard constant smallint := (new.id % 16)::smallint;
begin
    if new.sandbox then
        return null;
    end if;
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
drop trigger payment_status_count on payment;
create trigger payment_status_count after insert or update of status on payment
    for each row execute function count_payment_status_v2();

-- The live views leave the sandbox out (the same definitions with "not p.sandbox");
-- sandbox_reconciliation is the sandbox's /audit.
create or replace view reconciliation as
select
    (p.accepted_at at time zone 'Asia/Jakarta')::date as tanggal,
    p.partner_code as pop,
    row_number() over (
        partition by p.partner_code, (p.accepted_at at time zone 'Asia/Jakarta')::date
        order by p.nob, pp.period
    ) as no,
    pp.bill_no as id,
    p.nob,
    p.customer_id as nopel,
    pp.period as periode,
    pp.bill_id as rid,
    p.pid,
    p.merchant as mer,
    case when p.reversed_at is null then 0 else 1 end as rev,
    pp.water as air,
    pp.admin_fee as administrasi,
    0::bigint as administrasi_angsuran,
    pp.admin_vat as ppn_administrasi,
    pp.late_fee as denda,
    pp.installment as angsuran,
    0::bigint as materai,
    0::bigint as registrasi,
    0::bigint as biaya_pemasangan,
    0::bigint as ppn_pemasangan,
    0::bigint as biaya_jarak,
    pp.water + pp.admin_fee + pp.admin_vat + pp.late_fee + pp.installment as jumlah,
    p.accepted_at as diterima_pada,
    p.reversed_at as dibatalkan_pada
from payment p
join payment_period pp on pp.payment_id = p.id and pp.paid
where not p.sandbox;

create view sandbox_reconciliation as
select
    (p.accepted_at at time zone 'Asia/Jakarta')::date as tanggal,
    p.partner_code as pop,
    row_number() over (
        partition by p.partner_code, (p.accepted_at at time zone 'Asia/Jakarta')::date
        order by p.nob, pp.period
    ) as no,
    pp.bill_no as id,
    p.nob,
    p.customer_id as nopel,
    pp.period as periode,
    pp.bill_id as rid,
    p.pid,
    p.merchant as mer,
    case when p.reversed_at is null then 0 else 1 end as rev,
    pp.water as air,
    pp.admin_fee as administrasi,
    0::bigint as administrasi_angsuran,
    pp.admin_vat as ppn_administrasi,
    pp.late_fee as denda,
    pp.installment as angsuran,
    0::bigint as materai,
    0::bigint as registrasi,
    0::bigint as biaya_pemasangan,
    0::bigint as ppn_pemasangan,
    0::bigint as biaya_jarak,
    pp.water + pp.admin_fee + pp.admin_vat + pp.late_fee + pp.installment as jumlah,
    p.accepted_at as diterima_pada,
    p.reversed_at as dibatalkan_pada
from payment p
join payment_period pp on pp.payment_id = p.id and pp.paid
where p.sandbox;

comment on view sandbox_reconciliation is
    'The reconciliation view of sandbox payments (GET /audit with a sandbox credential): the same '
    'columns; no money moved.';

create or replace view daily_recap as
with per_payment as (
    select
        p.partner_code,
        (p.accepted_at at time zone 'Asia/Jakarta')::date as tanggal,
        p.status,
        p.reversed_at is not null as reversed,
        p.amount,
        coalesce(p.paid_total, 0) as paid_total,
        coalesce(cardinality(p.paid_periods), 0) as paid_bills
    from payment p
    where not p.sandbox
)
select
    x.tanggal,
    x.partner_code as pop,
    pa.name as mitra,
    count(*) as transaksi,
    count(*) filter (where x.status = 'accepted') as accepted,
    count(*) filter (where x.status = 'changed') as changed,
    count(*) filter (where x.status = 'rejected') as rejected,
    count(*) filter (where x.status = 'created') as in_progress,
    coalesce(sum(x.amount), 0)::bigint as jumlah_bayar,
    coalesce(sum(x.paid_bills) filter (where not x.reversed), 0)::bigint as lembar,
    coalesce(sum(x.paid_total) filter (where not x.reversed), 0)::bigint as jumlah,
    count(*) filter (where x.reversed) as reversals,
    coalesce(sum(x.paid_bills) filter (where x.reversed), 0)::bigint as lembar_reversed,
    coalesce(sum(x.paid_total) filter (where x.reversed), 0)::bigint as jumlah_reversed
from per_payment x
join partner pa on pa.code = x.partner_code
group by x.tanggal, x.partner_code, pa.name;

create or replace view payment_attention as
    select p.id, 'changed'::text as reason, p.posted_at as since,
           'paid ' || coalesce(p.paid_total, 0) || ' of amo ' || p.amount
           || coalesce(', not paid: ' || nullif(array_to_string(p.problem_periods, ' '), ''), '') as detail,
           'check with the partner; reverse or settle the difference'::text as action
    from payment p where p.status = 'changed' and not p.sandbox
    union all
    select p.id, 'rejected', p.posted_at, 'every period was paid before: ' || array_to_string(p.periods, ' '),
           'refund the customer through the partner'
    from payment p where p.status = 'rejected' and not p.sandbox
    union all
    select p.id, 'stuck', p.stuck_at, p.stuck_reason,
           'fix the cause, then: flask --app wsgi payment requeue ' || p.nob
    from payment p where p.stuck_at is not null and p.status = 'created' and not p.sandbox
    union all
    select p.id, 'slow', p.accepted_at, 'in progress for ' || date_trunc('second', now() - p.accepted_at),
           'check the worker and the queue; flask --app wsgi payment requeue ' || p.nob
    from payment p
    where p.status = 'created' and p.stuck_at is null and p.accepted_at < now() - interval '10 minutes'
      and not p.sandbox
    union all
    select w.payment_id, 'webhook failed', coalesce(w.last_attempt_at, w.created_at),
           w.event || ' to ' || w.url || ' after ' || w.attempts || ' attempts: ' || coalesce(w.last_error, '?'),
           'flask --app wsgi webhook resend ' || p.nob
    from webhook_delivery w join payment p on p.id = w.payment_id
    where w.status = 'failed' and not p.sandbox;
