-- Operator views: what operators query in psql or a BI tool.
-- Columns use PeTi's names where operators know them from the partner reports
-- (tanggal, pop, nob, pid, nopel, periode, jumlah ...). Every "day" is a WIB
-- calendar day of the payment's acceptance (payment.accepted_at).

-- Finding one partner's payments of one WIB day without scanning the others.
create index payment_partner_wib_day
    on payment (partner_code, ((accepted_at at time zone 'Asia/Jakarta')::date));

create view reconciliation as
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
join payment_period pp on pp.payment_id = p.id and pp.paid;

comment on view reconciliation is
    'Reconciliation rows (GET /audit reads this view): one row per bill paid by a partner''s payment, '
    'on the WIB day the payment was accepted. Filter by pop and tanggal; no numbers the rows of one '
    'partner and day (order nob, periode). rev = 1: the payment was reversed, the bill is unpaid again. '
    'Amounts are the ones paid (the ledger may have changed since).';
comment on column reconciliation.tanggal is 'WIB day the payment was accepted (tgl of GET /audit).';
comment on column reconciliation.pop is 'Partner code (the token''s sub).';
comment on column reconciliation.no is 'Row number within the partner''s day, continuous across pages.';
comment on column reconciliation.id is 'The bill id shown to partners (tagihan[].id).';
comment on column reconciliation.nob is 'Receipt number of the payment.';
comment on column reconciliation.nopel is 'Customer number (cid).';
comment on column reconciliation.periode is 'Billing month YYYYMM.';
comment on column reconciliation.rid is 'Ledger row id of the paid bill (bill.id).';
comment on column reconciliation.pid is 'The partner''s proof-of-payment id.';
comment on column reconciliation.mer is 'Merchant (outlet) of the partner.';
comment on column reconciliation.rev is '1 when the payment was reversed, else 0.';
comment on column reconciliation.jumlah is 'Total of this bill as paid: air + administrasi + ppn_administrasi + denda + angsuran.';
comment on column reconciliation.diterima_pada is 'When the payment was accepted (payment.accepted_at).';
comment on column reconciliation.dibatalkan_pada is 'When the payment was reversed (payment.reversed_at), else null.';

create view daily_recap as
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

comment on view daily_recap is
    'Daily recap per partner and WIB day of acceptance. jumlah/lembar = bills paid and still standing '
    '(the rev = 0 rows of the reconciliation view); reversals/jumlah_reversed = payments reversed since '
    '(counted on the payment''s day, the rev = 1 rows).';
comment on column daily_recap.tanggal is 'WIB day the payments were accepted.';
comment on column daily_recap.pop is 'Partner code.';
comment on column daily_recap.mitra is 'Partner name.';
comment on column daily_recap.transaksi is 'Payments recorded that day (every status).';
comment on column daily_recap.accepted is 'Payments posted in full (202).';
comment on column daily_recap.changed is 'Payments posted with differences (206, suspect data).';
comment on column daily_recap.rejected is 'Payments refused at posting (409, paid before).';
comment on column daily_recap.in_progress is 'Payments not posted yet (created).';
comment on column daily_recap.jumlah_bayar is 'Sum of amo: what the partner collected, every status.';
comment on column daily_recap.lembar is 'Bills paid by payments that are not reversed.';
comment on column daily_recap.jumlah is 'Sum paid to the ledger by payments that are not reversed (= reconciliation rows with rev = 0).';
comment on column daily_recap.reversals is 'Payments of that day reversed since.';
comment on column daily_recap.lembar_reversed is 'Bills freed again by those reversals.';
comment on column daily_recap.jumlah_reversed is 'Sum those reversed payments had paid.';

create view payments_needing_attention as
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
from payment p
join lateral (
    select 'changed'::text as reason, p.posted_at as since,
           'paid ' || coalesce(p.paid_total, 0) || ' of amo ' || p.amount
           || coalesce(', not paid: ' || nullif(array_to_string(p.problem_periods, ' '), ''), '') as detail,
           'check with the partner; reverse or settle the difference'::text as action
    where p.status = 'changed'
    union all
    select 'rejected', p.posted_at, 'every period was paid before: ' || array_to_string(p.periods, ' '),
           'refund the customer through the partner'
    where p.status = 'rejected'
    union all
    select 'stuck', p.stuck_at, p.stuck_reason,
           'fix the cause, then: flask --app wsgi payment requeue ' || p.nob
    where p.stuck_at is not null and p.status = 'created'
    union all
    select 'slow', p.accepted_at, 'in progress for ' || date_trunc('second', now() - p.accepted_at),
           'check the worker and the queue; flask --app wsgi payment requeue ' || p.nob
    where p.status = 'created' and p.stuck_at is null and p.accepted_at < now() - interval '10 minutes'
    union all
    select 'webhook failed', coalesce(w.last_attempt_at, w.created_at),
           w.event || ' to ' || w.url || ' after ' || w.attempts || ' attempts: ' || coalesce(w.last_error, '?'),
           'flask --app wsgi webhook resend ' || p.nob
    from webhook_delivery w
    where w.payment_id = p.id and w.status = 'failed'
) a on true;

comment on view payments_needing_attention is
    'Payments an operator should look at, one row per payment and reason: changed (206, amounts '
    'differ or periods paid elsewhere), rejected (409, paid before), stuck (posting failed for good, '
    'payment.stuck_at), slow (still in progress after 10 minutes, not flagged yet), webhook failed '
    '(a callback given up after its retries). action says what to do next.';
comment on column payments_needing_attention.reason is 'changed | rejected | stuck | slow | webhook failed.';
comment on column payments_needing_attention.tanggal is 'WIB day the payment was accepted.';
comment on column payments_needing_attention.status is 'created | accepted | changed | rejected.';
comment on column payments_needing_attention.rev is '1 when the payment was reversed since.';
comment on column payments_needing_attention.jumlah_bayar is 'amo: what the partner collected.';
comment on column payments_needing_attention.jumlah_tagihan is 'What posting paid to the ledger (null while in progress).';
comment on column payments_needing_attention.periode_masalah is 'Periods posting could not pay.';
comment on column payments_needing_attention.since is 'When the problem started (posting, stuck flag, acceptance, last webhook attempt).';
comment on column payments_needing_attention.detail is 'What went wrong.';
comment on column payments_needing_attention.action is 'What an operator does about it.';
