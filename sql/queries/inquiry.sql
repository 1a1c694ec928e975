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

-- purge_expired --
delete from inquiry where expires_at <= :now
