-- Inquiry: a customer's unpaid bills and the snapshot a payment is checked against.

-- inquire --
-- Ledger in this database: read the customer and its bills, save what is shown, in one
-- statement. No row when the customer does not exist; token null when nothing is shown.
select c.customer_row as customer, s.shown as bills, s.saved_token as token
from customer_bills_v1(:cid) c,
     save_inquiry_v2(:token, :partner, :cid, c.customer_row, c.unpaid, :now, :expires, false) s

-- sandbox_inquire --
-- ``inquire`` in the sandbox: its test customers (sql/015_sandbox.sql), never the ledger.
select c.customer_row as customer, s.shown as bills, s.saved_token as token
from sandbox_customer_bills_v1(:cid) c,
     save_inquiry_v2(:token, :partner, :cid, c.customer_row, c.unpaid, :now, :expires, true) s

-- bills --
-- The customer and its unpaid bills (jsonb). Runs on the ledger, when it is a database
-- of its own (then ``save`` follows on ours).
select customer_row as customer, unpaid as bills from customer_bills_v1(:cid)

-- sandbox_bills --
-- ``bills`` of the sandbox's test customers (on ours).
select customer_row as customer, unpaid as bills from sandbox_customer_bills_v1(:cid)

-- save --
-- ``inquire``'s second half, on ours: the same columns.
select cast(:customer as jsonb) as customer, s.shown as bills, s.saved_token as token
from save_inquiry_v2(:token, :partner, :cid, cast(:customer as jsonb), cast(:bills as jsonb), :now, :expires,
                     :sandbox) s

-- save_with_reference --
-- ``save`` bound to the partner's reference, showing at most :max_bills bills (the
-- oldest; null: all). A row of that reference which expired, is this customer's and no
-- payment used is renewed in place (same token); the token is null when the reference
-- is held otherwise (live, another customer's, or paid).
with shown as (
    select coalesce(jsonb_agg(e.bill order by e.n), '[]'::jsonb) as bills
    from jsonb_array_elements(shown_bills_v2(:cid, cast(:bills as jsonb), :scope)) with ordinality as e(bill, n)
    where cast(:max_bills as integer) is null or e.n <= cast(:max_bills as integer)
),
saved as (
    insert into inquiry (token, partner_code, customer_id, snapshot, created_at, expires_at, reference, sandbox)
    select :token, :partner, :cid,
           jsonb_build_object('customer', cast(:customer as jsonb), 'bills', shown.bills), :now, :expires,
           :reference, :sandbox
    from shown where jsonb_array_length(shown.bills) > 0
    on conflict (partner_code, sandbox, reference) do update
        set snapshot = excluded.snapshot, created_at = excluded.created_at, expires_at = excluded.expires_at
        where inquiry.customer_id = excluded.customer_id and inquiry.expires_at <= excluded.created_at
          and not exists (select 1 from payment p where p.inquiry_token = inquiry.token)
    returning token
)
select cast(:customer as jsonb) as customer, shown.bills, (select token from saved) as token from shown

-- by_reference --
select token, customer_id, snapshot, expires_at from inquiry
where partner_code = :partner and sandbox = :sandbox and reference = :reference

-- purge_expired --
-- Expired snapshots no payment used: a payment's snapshot is what it was checked
-- against, and what its answers by reference repeat (bills, customer name).
delete from inquiry i
where i.expires_at <= :now and not exists (select 1 from payment p where p.inquiry_token = i.token)
