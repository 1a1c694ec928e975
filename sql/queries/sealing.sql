-- Sealed secrets (pdam/infra/sealing.py): the canary, and each sealed column read in
-- batches of values not under the newest key (:keep is the LIKE pattern of the values
-- left alone) and written back guarded by the value read.

-- canary --
select sealed from secret_canary

-- add_canary --
insert into secret_canary (sealed) values (:sealed) on conflict do nothing

-- set_canary --
update secret_canary set sealed = :sealed, sealed_at = now()

-- partner_sealed --
select code, webhook_secret from partner
where webhook_secret not like :keep and (cast(:after as text) is null or code > :after)
order by code limit :batch

-- set_partner_sealed --
update partner set webhook_secret = :new0 where code = :key and webhook_secret = :old0

-- snap_client_sealed --
select client_id, client_secret from snap_client
where client_secret not like :keep and (cast(:after as text) is null or client_id > :after)
order by client_id limit :batch

-- set_snap_client_sealed --
update snap_client set client_secret = :new0 where client_id = :key and client_secret = :old0

-- payment_sealed --
-- Both columns of a row at once: each is checked to be sealed on every update.
select id, callback_token, request_authorization from payment
where (callback_token not like :keep or request_authorization not like :keep)
  and (cast(:after as bigint) is null or id > :after)
order by id limit :batch

-- set_payment_sealed --
update payment set callback_token = :new0, request_authorization = :new1
where id = :key and callback_token is not distinct from :old0
  and request_authorization is not distinct from :old1

-- count_by_key --
-- Values per sealed column and key id ("plaintext": not sealed), the canary's too.
with sealed (name, value) as (
    select 'partner.webhook_secret', webhook_secret from partner
    union all select 'snap_client.client_secret', client_secret from snap_client
    union all select 'payment.callback_token', callback_token from payment where callback_token is not null
    union all select 'payment.request_authorization', request_authorization from payment
        where request_authorization is not null
    union all select 'secret_canary', sealed from secret_canary
)
select name, case when left(value, 6) = 'pdam1.' then substr(value, 7, 8) else 'plaintext' end as key_id,
       count(*) as n
from sealed group by 1, 2 order by 1, 2

-- validate_partner --
-- Migration 009 adds the "sealed" checks not valid (so the values stored before can be
-- sealed by updates); once they are, the checks are validated (a no-op once valid).
alter table partner validate constraint partner_webhook_secret_sealed

-- validate_snap_client --
alter table snap_client validate constraint snap_client_client_secret_sealed

-- validate_payment_callback_token --
alter table payment validate constraint payment_callback_token_sealed

-- validate_payment_request_authorization --
alter table payment validate constraint payment_request_authorization_sealed
