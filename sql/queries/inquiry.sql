-- Inquiry: a customer's unpaid bills and the snapshot a payment is checked against.

-- bills --
-- The customer with its unpaid bills, oldest first (one row with null bill columns
-- when it has none; no row when the customer does not exist). Runs on the ledger.
select c.id as cid, c.name, c.address, c.tariff, b.bill_no, b.period, b.meter_start,
       b.meter_end, b.usage, b.water, b.admin_fee, b.admin_vat, b.late_fee, b.installment, b.total
from customer c left join bill b on b.customer_id = c.id and b.paid_by is null
where c.id = :cid
order by b.period

-- in_progress --
-- Periods of the customer held by a payment not posted yet.
select period from payment_period pp join payment p on p.id = pp.payment_id
where pp.customer_id = :cid and pp.live and p.status = 'created'

-- save --
insert into inquiry (token, partner_code, customer_id, snapshot, created_at, expires_at)
values (:token, :partner, :cid, cast(:snapshot as jsonb), :now, :expires)

-- save_with_reference --
-- An inquiry bound to the partner's reference. A row of that reference which expired,
-- is this customer's and no payment used is renewed in place (same token); no row is
-- returned when the reference is held otherwise (live, another customer's, or paid).
insert into inquiry (token, partner_code, customer_id, snapshot, created_at, expires_at, reference)
values (:token, :partner, :cid, cast(:snapshot as jsonb), :now, :expires, :reference)
on conflict (partner_code, reference) do update
    set snapshot = excluded.snapshot, created_at = excluded.created_at, expires_at = excluded.expires_at
    where inquiry.customer_id = excluded.customer_id and inquiry.expires_at <= excluded.created_at
      and not exists (select 1 from payment p where p.inquiry_token = inquiry.token)
returning token

-- by_reference --
select token, customer_id, snapshot, expires_at from inquiry
where partner_code = :partner and reference = :reference

-- purge_expired --
-- Expired snapshots no payment used: a payment's snapshot is what it was checked
-- against, and what its answers by reference repeat (bills, customer name).
delete from inquiry i
where i.expires_at <= :now and not exists (select 1 from payment p where p.inquiry_token = i.token)
