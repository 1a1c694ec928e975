-- Posting: applying a recorded payment to the billing ledger, exactly once.
-- The outcome rules are the functions of sql/005_functions.sql (one copy for both paths).

-- post --
-- Ledger in this database: lock, pay and finish in one statement.
select id, partner_code, pid, customer_id, inquiry_token, amount, periods, merchant, pat, nob,
       accepted_at, status, posted_at, paid_total, paid_periods, problem_periods,
       posting_attempts, stuck_at, stuck_reason, reversed_at, callback_url, callback_protocol, sandbox
from post_payment_v2(:id, :now, :attempt)

-- post_alone --
-- Ledger in this database, a payment without X-Async (no callback to record with its
-- outcome): the same function, run as a transaction of its own (autocommit). No row when
-- the payment has a callback (its id is not passed on), is final already or does not
-- exist: the caller then runs ``post`` in its transaction. callback_url never changes
-- after the payment is recorded, so reading it before the function's lock is safe.
select id, partner_code, pid, customer_id, inquiry_token, amount, periods, merchant, pat, nob,
       accepted_at, status, posted_at, paid_total, paid_periods, problem_periods,
       posting_attempts, stuck_at, stuck_reason, reversed_at, callback_url, callback_protocol, sandbox
from post_payment_v2(
    (select id from payment where id = :id and coalesce(callback_url, '') = ''), :now, :attempt)

-- status --
select status from payment where id = :id

-- lock --
-- Separate ledger, step 1: lock the payment in our database.
select id, customer_id, periods, nob, status, sandbox from payment where id = :id for update

-- pay_bills --
-- Separate ledger, step 2 (in the ledger database).
select id, bill_no, period, water, admin_fee, admin_vat, late_fee, installment, total
from pay_bills_v1(:nob, :customer_id, :periods, :now)

-- sandbox_pay_bills --
-- Separate ledger, step 2 of a sandbox payment: its test customers, on ours (never the ledger).
select id, bill_no, period, water, admin_fee, admin_vat, late_fee, installment, total
from sandbox_pay_bills_v1(:customer_id, :periods, :attempt)

-- finish --
-- Separate ledger, step 3: the outcome, with the bills the ledger paid.
select id, partner_code, pid, customer_id, inquiry_token, amount, periods, merchant, pat, nob,
       accepted_at, status, posted_at, paid_total, paid_periods, problem_periods,
       posting_attempts, stuck_at, stuck_reason, reversed_at, callback_url, callback_protocol, sandbox
from finish_posting_v2(:id, :now, :bill_id, :bill_no, :period, :water, :admin_fee,
                                :admin_vat, :late_fee, :installment, :total)

-- flag_stuck --
update payment set stuck_at = :now, stuck_reason = left(:reason, 500), posting_attempts = :attempts
where id = :id and status = 'created'

-- lock_by_nob --
select id, status from payment where nob = :nob for update

-- unflag --
update payment set stuck_at = null, stuck_reason = null where id = :id
