-- SNAP clients (pdam/core/snap_clients.py), access tokens and X-EXTERNAL-ID answers (pdam/snap/store.py).

-- register --
-- No row when the partner already has SNAP credentials or the client id is taken.
insert into snap_client (client_id, partner_code, public_key, client_secret, service_id, created_at, sandbox)
values (:client_id, :partner, :public_key, :secret, :service_id, :now, :sandbox)
on conflict do nothing
returning client_id

-- by_partner --
select c.client_id, c.partner_code, c.service_id, c.client_secret, c.created_at
from snap_client c where c.partner_code = :partner and c.sandbox = :sandbox

-- set_secret --
update snap_client set client_secret = :secret where partner_code = :partner and sandbox = :sandbox
returning client_secret

-- all --
select c.client_id, c.partner_code, p.name as partner_name, p.active, c.service_id, c.created_at, c.sandbox
from snap_client c join partner p on p.code = c.partner_code
order by c.partner_code, c.sandbox

-- client --
-- A client with its partner's state (the token request), and one token of the
-- partner's rate limit (rate_wait 0: taken, else the seconds until the next; section 13).
-- address_ok: the request's :address is one the client may be used from (a request from
-- elsewhere takes no rate token).
select c.client_id, c.partner_code, c.public_key, c.service_id, p.active,
       case when a.ok then take_rate_token_v1(c.partner_code || case when c.sandbox then '+sandbox' else '' end, :rate)
            else 0 end as rate_wait,
       c.sandbox, a.ok as address_ok
from snap_client c join partner p on p.code = c.partner_code
cross join lateral (select address_allowed_v1(c.allowed_addresses, :address) as ok) a
where c.client_id = :client_id

-- allow --
-- snap allow: the networks (null: any); no row when the client does not exist.
update snap_client set allowed_addresses = cast(:networks as cidr[]) where client_id = :client_id
returning client_id

-- issue_token --
-- A new access token; the client's expired tokens and its X-EXTERNAL-ID answers older
-- than the previous WIB day go at the same time.
with purge_tokens as (
    delete from snap_access_token where client_id = :client_id and expires_at <= :now
),
purge_ids as (
    delete from snap_external_id where client_id = :client_id and day < cast(:day as date) - 1
)
insert into snap_access_token (token_hash, client_id, issued_at, expires_at)
values (:token_hash, :client_id, :now, :expires)

-- token_client --
-- The client of a live access token (no row: unknown or expired), with its partner's state
-- and one token of the partner's rate limit (as in "client").
select c.client_id, c.partner_code, c.service_id, p.active,
       case when a.ok then take_rate_token_v1(c.partner_code || case when c.sandbox then '+sandbox' else '' end, :rate)
            else 0 end as rate_wait,
       c.sandbox, a.ok as address_ok
from snap_access_token t
join snap_client c on c.client_id = t.client_id
join partner p on p.code = c.partner_code
cross join lateral (select address_allowed_v1(c.allowed_addresses, :address) as ok) a
where t.token_hash = :token_hash and t.expires_at > :now

-- sealed_secret --
-- A client's secret, sealed: opened by the core only (snap_clients.verify).
select client_secret from snap_client where client_id = :client_id

-- claim_external_id --
-- Claim an X-EXTERNAL-ID for this request. No row when it is taken: the insert waits
-- for a concurrent claimer's transaction, so the taken row read next has its answer.
insert into snap_external_id (client_id, day, external_id, fingerprint, created_at)
values (:client_id, :day, :external_id, :fingerprint, :now)
on conflict do nothing
returning external_id

-- external_id --
select fingerprint, status, body from snap_external_id
where client_id = :client_id and day = :day and external_id = :external_id

-- answer_external_id --
update snap_external_id set status = :status, body = :body
where client_id = :client_id and day = :day and external_id = :external_id and status is null

-- save_payment_refs --
-- The bank's referenceNo and trxDateTime of the request that recorded the payment.
insert into snap_payment (payment_id, reference_no, trx_date_time)
values (:payment_id, :reference_no, :trx_date_time)

-- payment_refs --
-- What save_payment_refs kept (no row: a payment recorded before they were kept).
select reference_no, trx_date_time from snap_payment where payment_id = :payment_id
