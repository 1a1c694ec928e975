-- Partners (mitra) and the tokens issued to them.

create table partner (
    code         text primary key check (code ~ '^[0-9]{2}$'),
    name         text not null check (length(name) between 1 and 64),
    active       boolean not null default true,
    -- HMAC-SHA256 key that signs this partner's webhook callbacks.
    webhook_secret text not null check (length(webhook_secret) >= 32),
    created_at   timestamptz not null default now()
);
comment on table partner is 'Partner channels (mitra): banks, minimarkets, e-wallets. code is the JWT sub and the first two digits of every nob.';

create table api_token (
    jti           text primary key check (jti ~ '^[0-9a-f]{32}$'),
    partner_code  text not null references partner,
    issued_at     timestamptz not null,
    expires_at    timestamptz not null,
    revoked_at    timestamptz,
    revoke_reason text,
    check ((revoked_at is null) = (revoke_reason is null)),
    check (expires_at > issued_at)
);
create index api_token_partner on api_token (partner_code);
comment on table api_token is 'JWTs issued by the token CLI. A row with revoked_at set is refused on the next request.';
