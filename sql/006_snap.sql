-- SNAP, the national open API banks use for virtual accounts (contract section 12):
-- a bank's client credentials, its access tokens, and the answers given per
-- X-EXTERNAL-ID. A SNAP inquiry is an inquiry and a SNAP payment a payment: they
-- use the tables above, with two additions to them.

-- An inquiry may be bound to the partner's own reference for it (SNAP's
-- inquiryRequestId): the same reference for the same customer while it lives is the
-- same inquiry, and a payment finds its inquiry by that reference. Unique per partner
-- while the row exists (PeTi inquiries have none; nulls never collide).
alter table inquiry add column reference text check (length(reference) between 1 and 128);
alter table inquiry add constraint inquiry_partner_reference unique (partner_code, reference);
comment on column inquiry.reference is
    'The partner''s own id of this inquiry (SNAP inquiryRequestId; null for PeTi). A payment by '
    'reference pays the live inquiry with its pid as reference.';
comment on table inquiry is
    'Inquiry (X-Cross-Site) snapshots the payments are validated against; purged after expires_at by a '
    'periodic job unless a payment used them (the snapshot is what that payment was checked against).';

-- A payment's pid is the partner's reference: up to 50 characters on PeTi, up to 128
-- on SNAP (paymentRequestId). Each edge checks its own length.
alter table payment drop constraint payment_pid_check;
alter table payment add constraint payment_pid_check check (length(pid) between 1 and 128);

create table snap_client (
    client_id     text primary key check (client_id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    partner_code  text not null unique references partner,
    -- The bank's RSA public key (SubjectPublicKeyInfo PEM): verifies the token request.
    public_key    text not null check (public_key like '-----BEGIN PUBLIC KEY-----%'),
    -- Shared with the bank: the HMAC-SHA512 key of its transactional requests.
    client_secret text not null check (length(client_secret) >= 32),
    -- Our company code at that bank (partnerServiceId, left-padded to 8 on the wire).
    service_id    text not null check (service_id ~ '^[0-9A-Za-z]{1,8}$'),
    created_at    timestamptz not null default now()
);
comment on table snap_client is
    'SNAP credentials of a partner (a bank): client id (X-CLIENT-KEY / X-PARTNER-ID), its RSA public key, '
    'the client secret and partnerServiceId. Managed by flask --app wsgi snap register|secret|list.';

create table snap_access_token (
    -- SHA-256 (hex) of the token: the token itself is never stored.
    token_hash  text primary key check (token_hash ~ '^[0-9a-f]{64}$'),
    client_id   text not null references snap_client on delete cascade,
    issued_at   timestamptz not null,
    expires_at  timestamptz not null,
    check (expires_at > issued_at)
);
create index snap_access_token_client on snap_access_token (client_id, expires_at);
comment on table snap_access_token is
    'Access tokens of POST /snap/v1.0/access-token/b2b (hashed), valid until expires_at in every web '
    'process. A client''s expired tokens are deleted when it gets a new one.';

create table snap_external_id (
    client_id    text not null references snap_client on delete cascade,
    -- WIB day the request arrived: X-EXTERNAL-ID is unique per client and day.
    day          date not null,
    external_id  text not null check (length(external_id) between 1 and 36),
    -- SHA-256 (hex) of method, path and minified body: "the identical request".
    fingerprint  text not null check (fingerprint ~ '^[0-9a-f]{64}$'),
    -- The first answer, exactly as sent (set in the transaction that claimed the row).
    status       smallint check (status between 200 and 599),
    body         bytea,
    created_at   timestamptz not null,
    primary key (client_id, day, external_id),
    check ((status is null) = (body is null))
);
comment on table snap_external_id is
    'The answer given to each X-EXTERNAL-ID of a SNAP client per WIB day: the identical request again '
    'gets these bytes, any other request with that id 409. Rows older than the previous day are deleted '
    'when the client gets a new token.';
