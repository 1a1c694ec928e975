-- Payment acceptance and look-ups.

-- by_pid --
select id, partner_code, pid, customer_id, inquiry_token, amount, periods, merchant, pat, nob,
       accepted_at, status, posted_at, paid_total, paid_periods, problem_periods,
       posting_attempts, stuck_at, stuck_reason, reversed_at, callback_url, callback_protocol, sandbox
from payment where partner_code = :partner and sandbox = :sandbox and pid = :pid

-- checks --
-- Everything the checks need, in one round trip: a payment already made with this
-- pid, the live inquiry of this partner, whether the inquiry is already paid and
-- which of the periods are already paid or being paid.
select (select id from payment where partner_code = :partner and sandbox = :sandbox and pid = :pid) as existing_id,
       i.customer_id as inq_customer, i.snapshot as inq_snapshot,
       (select nob from payment where inquiry_token = :inq) as inq_nob,
       array(select period from payment_period where customer_id = :cid
             and period = any(:periods) and scope = :scope and live order by period) as taken
from (values (1)) as one
left join inquiry i on i.token = :inq and i.partner_code = :partner and i.sandbox = :sandbox
    and i.expires_at > :now

-- record --
-- The payment, its receipt number and its periods in one statement; no row when the
-- day's receipt numbers are used up. The counter row stays locked until the
-- transaction ends, so numbers are never shared.
with nob as (select next_nob_v2(:partner, :day, :sandbox) as nob),
p as (
    insert into payment (partner_code, pid, customer_id, inquiry_token, amount, periods,
                         merchant, pat, nob, accepted_at, callback_url, callback_protocol, callback_token,
                         request_authorization, sandbox)
    select :partner, :pid, :cid, :inq, :amount, :periods, :merchant, :pat, nob.nob, :now,
           :callback_url, :callback_protocol, :callback_token, :authorization, :sandbox
    from nob where nob.nob is not null
    returning id, partner_code, pid, customer_id, inquiry_token, amount, periods, merchant, pat,
              nob, accepted_at, status, posted_at, paid_total, paid_periods, problem_periods,
              posting_attempts, stuck_at, stuck_reason, reversed_at, callback_url,
              callback_protocol, sandbox
),
pp as (
    insert into payment_period (payment_id, customer_id, period, scope)
    select p.id, :cid, unnest(cast(:periods as text[])), :scope from p
)
select id, partner_code, pid, customer_id, inquiry_token, amount, periods, merchant, pat, nob,
       accepted_at, status, posted_at, paid_total, paid_periods, problem_periods,
       posting_attempts, stuck_at, stuck_reason, reversed_at, callback_url, callback_protocol, sandbox
from p

-- find --
-- One payment of a partner and customer by nob or pid (+pat or +inq).
select id, partner_code, pid, customer_id, inquiry_token, amount, periods, merchant, pat, nob,
       accepted_at, status, posted_at, paid_total, paid_periods, problem_periods,
       posting_attempts, stuck_at, stuck_reason, reversed_at, callback_url, callback_protocol, sandbox
from payment
where partner_code = :partner and sandbox = :sandbox and customer_id = :cid
  and (cast(:nob as text) is null or nob = :nob)
  and (cast(:pid as text) is null or pid = :pid)
  and (cast(:pat as text) is null or pat = :pat)
  and (cast(:inq as text) is null or inquiry_token = :inq)

-- by_pid_shown --
-- A payment of a partner by pid, with the snapshot of the inquiry it paid.
select p.id, p.partner_code, p.pid, p.customer_id, p.inquiry_token, p.amount, p.periods,
       p.merchant, p.pat, p.nob, p.accepted_at, p.status, p.posted_at, p.paid_total,
       p.paid_periods, p.problem_periods, p.posting_attempts, p.stuck_at, p.stuck_reason,
       p.reversed_at, p.callback_url, p.callback_protocol, p.sandbox,
       i.snapshot as shown
from payment p left join inquiry i on i.token = p.inquiry_token
where p.partner_code = :partner and p.sandbox = :sandbox and p.pid = :pid

-- find_shown --
-- A payment of a partner and customer by pid, with the snapshot of the inquiry it paid.
select p.id, p.partner_code, p.pid, p.customer_id, p.inquiry_token, p.amount, p.periods,
       p.merchant, p.pat, p.nob, p.accepted_at, p.status, p.posted_at, p.paid_total,
       p.paid_periods, p.problem_periods, p.posting_attempts, p.stuck_at, p.stuck_reason,
       p.reversed_at, p.callback_url, p.callback_protocol, p.sandbox,
       i.snapshot as shown
from payment p left join inquiry i on i.token = p.inquiry_token
where p.partner_code = :partner and p.sandbox = :sandbox and p.customer_id = :cid and p.pid = :pid
