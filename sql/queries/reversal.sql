-- Reversal: undoing an applied payment within its window (contract section 8).

-- lock --
select id, partner_code, pid, customer_id, inquiry_token, amount, periods, merchant, pat, nob,
       accepted_at, status, posted_at, paid_total, paid_periods, problem_periods,
       posting_attempts, stuck_at, stuck_reason, reversed_at, callback_url, callback_protocol, sandbox
from payment
where partner_code = :partner and sandbox = :sandbox and customer_id = :cid and pid = :pid and pat = :pat
for update

-- free_bills --
-- In the ledger: the bills this payment's nob paid become unpaid again.
update bill set paid_by = null, paid_at = null where paid_by = :nob returning period

-- mark_reversed --
update payment set reversed_at = :now
where id = :id and reversed_at is null and status in ('accepted', 'changed')
returning id, partner_code, pid, customer_id, inquiry_token, amount, periods, merchant, pat, nob,
          accepted_at, status, posted_at, paid_total, paid_periods, problem_periods,
          posting_attempts, stuck_at, stuck_reason, reversed_at, callback_url, callback_protocol, sandbox

-- release_periods --
update payment_period set live = false where payment_id = :id and live
