-- Contract 14.4: a bank's trxDateTime with fractional seconds (up to microseconds,
-- 32 characters) is kept and echoed as sent.
alter table snap_payment drop constraint snap_payment_trx_date_time_check;
alter table snap_payment add constraint snap_payment_trx_date_time_check
    check (length(trx_date_time) between 1 and 32);

-- Allowed addresses (contract 14.3): the networks a partner's live tokens and a SNAP
-- client may be used from; null: any (the default). Set by `partner allow` / `snap allow`.
alter table partner add column allowed_addresses cidr[] check (cardinality(allowed_addresses) > 0);
comment on column partner.allowed_addresses is
    'Networks the partner''s live PeTi tokens may be used from (partner allow); null: any address.';
alter table snap_client add column allowed_addresses cidr[] check (cardinality(allowed_addresses) > 0);
comment on column snap_client.allowed_addresses is
    'Networks this SNAP client may be used from (snap allow); null: any address.';

-- Whether p_address (text, or null when the request's address could not be told) is in
-- p_allowed (null: any address).
create function address_allowed_v1(p_allowed cidr[], p_address text) returns boolean
language sql immutable as $$
    select p_allowed is null or (p_address is not null and cast(p_address as inet) <<= any(p_allowed))
$$;
