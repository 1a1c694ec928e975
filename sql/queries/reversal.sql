-- Reversal: undoing an applied payment within its window (contract section 8).

-- lock --
select * from payment
where partner_code = :partner and sandbox = :sandbox and customer_id = :cid and pid = :pid and pat = :pat
for update

-- free_bills --
-- In the ledger: the bills this payment's nob paid become unpaid again.
update bill set paid_by = null, paid_at = null where paid_by = :nob returning period

-- mark_reversed --
update payment set reversed_at = :now
where id = :id and reversed_at is null and status in ('accepted', 'changed')
returning *

-- release_periods --
update payment_period set live = false where payment_id = :id and live
