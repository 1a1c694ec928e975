-- Inquiry: a customer's unpaid bills and the snapshot a payment is checked against.

-- bills --
-- The customer with its unpaid bills, oldest first (one row with null bill columns
-- when it has none; no row when the customer does not exist). Runs on the ledger.
select c.id as cid, c.name, c.address, c.tariff, b.bill_no, b.period, b.meter_start,
       b.meter_end, b.usage, b.water, b.admin_fee, b.admin_vat, b.late_fee, b.installment, b.total
from customer c left join bill b on b.customer_id = c.id and b.paid_by is null
where c.id = :cid
order by b.period

-- save --
-- The inquiry of these bills (a jsonb array), saved less what shown_bills_v1 hides,
-- in one statement: the bills shown, and the token (null when no bill is left and
-- nothing was saved).
with shown as (select shown_bills_v1(:cid, cast(:bills as jsonb)) as bills),
saved as (
    insert into inquiry (token, partner_code, customer_id, snapshot, created_at, expires_at)
    select :token, :partner, :cid,
           jsonb_build_object('customer', cast(:customer as jsonb), 'bills', shown.bills), :now, :expires
    from shown where jsonb_array_length(shown.bills) > 0
    returning token
)
select shown.bills, (select token from saved) as token from shown

-- save_with_reference --
-- The same, bound to the partner's reference. A row of that reference which expired,
-- is this customer's and no payment used is renewed in place (same token); the token
-- is null when the reference is held otherwise (live, another customer's, or paid).
with shown as (select shown_bills_v1(:cid, cast(:bills as jsonb)) as bills),
saved as (
    insert into inquiry (token, partner_code, customer_id, snapshot, created_at, expires_at, reference)
    select :token, :partner, :cid,
           jsonb_build_object('customer', cast(:customer as jsonb), 'bills', shown.bills), :now, :expires,
           :reference
    from shown where jsonb_array_length(shown.bills) > 0
    on conflict (partner_code, reference) do update
        set snapshot = excluded.snapshot, created_at = excluded.created_at, expires_at = excluded.expires_at
        where inquiry.customer_id = excluded.customer_id and inquiry.expires_at <= excluded.created_at
          and not exists (select 1 from payment p where p.inquiry_token = inquiry.token)
    returning token
)
select shown.bills, (select token from saved) as token from shown

-- by_reference --
select token, customer_id, snapshot, expires_at from inquiry
where partner_code = :partner and reference = :reference

-- purge_expired --
-- Expired snapshots no payment used: a payment's snapshot is what it was checked
-- against, and what its answers by reference repeat (bills, customer name).
delete from inquiry i
where i.expires_at <= :now and not exists (select 1 from payment p where p.inquiry_token = i.token)
