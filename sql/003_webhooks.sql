-- Webhook callbacks (X-Async): one delivery per event of a payment, every attempt recorded.

create table webhook_delivery (
    id               bigint generated always as identity primary key,
    payment_id       bigint not null references payment,
    event            text not null
                     check (event in ('created', 'accepted', 'changed', 'rejected', 'reversed')),
    -- X-Event-Id: the same for every attempt of this delivery and for an operator's resend of it.
    event_id         uuid not null default gen_random_uuid(),
    url              text not null,
    -- The body as sent (a snapshot of the payment when the event happened).
    body             jsonb not null,
    status           text not null default 'pending'
                     check (status in ('pending', 'delivered', 'refused', 'failed')),
    attempts         integer not null default 0 check (attempts >= 0),
    created_at       timestamptz not null,
    first_attempt_at timestamptz,
    last_attempt_at  timestamptz,
    last_error       text,
    delivered_at     timestamptz,
    -- Set on a delivery made by `webhook resend`: the delivery whose body it sends again.
    resend_of        bigint references webhook_delivery,
    check ((status = 'delivered') = (delivered_at is not null)),
    check ((attempts = 0) = (last_attempt_at is null))
);
create index webhook_delivery_payment on webhook_delivery (payment_id, id);
create index webhook_delivery_open on webhook_delivery (status) where status <> 'delivered';
comment on table webhook_delivery is 'Webhook callbacks (X-Async) of payments: one row per event (created, the final status, reversed) or operator resend. status: pending (queued or retrying), delivered (2xx), refused (3xx/4xx answer or an address the service may not call; not retried), failed (5xx/timeout/connection errors until WEBHOOK_MAX_ATTEMPTS or WEBHOOK_DEADLINE_SECONDS). event_id is the X-Event-Id header.';
comment on column webhook_delivery.event_id is 'X-Event-Id sent with every attempt; a resend keeps it so receivers can drop duplicates.';
comment on column webhook_delivery.last_error is 'The last attempt''s error or non-2xx answer, for operators.';

create table webhook_attempt (
    id           bigint generated always as identity primary key,
    delivery_id  bigint not null references webhook_delivery,
    attempted_at timestamptz not null,
    url          text not null,
    -- The receiver's HTTP status; null when no answer came (timeout, connection error, refused address).
    http_status  integer,
    error        text,
    duration_ms  integer not null check (duration_ms >= 0),
    check (http_status is not null or error is not null)
);
create index webhook_attempt_delivery on webhook_attempt (delivery_id, id);
comment on table webhook_attempt is 'Every HTTP attempt of a webhook delivery: when, where, the HTTP status or the error, and how long it took.';
