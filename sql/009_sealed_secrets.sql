-- Secrets the service must read back are sealed (pdam/infra/sealing.py): stored as
-- 'pdam1.<key id>.<Fernet token>' under a key of SECRET_KEYS, never in plain text.
-- `flask db upgrade` seals the values stored before this migration right after applying
-- it (sealing needs the key, which only the application holds).

-- A known text sealed by the first upgrade: every process opens it before it serves, so a
-- wrong or missing key is a start-up error. One row.
create table secret_canary (
    id        boolean primary key default true check (id),
    sealed    text not null check (sealed like 'pdam1.%'),
    sealed_at timestamptz not null default now()
);
comment on table secret_canary is
    'A known text sealed under SECRET_KEYS: web, worker and commands check at start that their keys open '
    'it. Resealed last by flask --app wsgi secrets rotate.';

-- New values must be sealed (not valid: the values already stored are sealed by the
-- upgrade that applies this file, each update being checked).
alter table partner add constraint partner_webhook_secret_sealed
    check (webhook_secret like 'pdam1.%') not valid;
alter table snap_client add constraint snap_client_client_secret_sealed
    check (client_secret like 'pdam1.%') not valid;
alter table payment add constraint payment_callback_token_sealed
    check (callback_token like 'pdam1.%') not valid;
alter table payment add constraint payment_request_authorization_sealed
    check (request_authorization like 'pdam1.%') not valid;

comment on column partner.webhook_secret is
    'Sealed (pdam1.<key id>.<token>): the HMAC-SHA256 key of this partner''s webhook signatures.';
comment on column snap_client.client_secret is
    'Sealed (pdam1.<key id>.<token>): the HMAC-SHA512 key of the bank''s transactional requests.';
comment on column payment.callback_token is
    'Sealed (pdam1.<key id>.<token>): the X-Async-Token sent back as Authorization with each callback.';
comment on column payment.request_authorization is
    'Sealed (pdam1.<key id>.<token>): the payment request''s Authorization, sent with its callbacks '
    'when it gave no X-Async-Token.';
