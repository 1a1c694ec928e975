-- Inquiry snapshots and payments.

create table inquiry (
    token         text primary key check (token ~ '^[0-9a-f]{32}$'),
    partner_code  text not null references partner,
    customer_id   text not null,
    -- What the partner was shown: [{"period", "bill_no", "total"}...] plus the customer.
    snapshot      jsonb not null,
    created_at    timestamptz not null,
    expires_at    timestamptz not null,
    check (expires_at > created_at)
);
create index inquiry_expires on inquiry (expires_at);
comment on table inquiry is 'Inquiry (X-Cross-Site) snapshots the payments are validated against; purged after expires_at by a periodic job.';

-- Receipt numbers: one counter per partner and WIB day. The row lock taken by
-- the increment serialises one partner''s allocations; the unique nob is the last word.
create table nob_counter (
    partner_code  text not null references partner,
    day           date not null,
    last_value    integer not null check (last_value between 1 and 9999),
    primary key (partner_code, day)
);

create table payment (
    id               bigint generated always as identity primary key,
    partner_code     text not null references partner,
    pid              text not null check (length(pid) between 1 and 50),
    customer_id      text not null check (customer_id ~ '^[0-9]{1,20}$'),
    inquiry_token    text not null check (inquiry_token ~ '^[0-9a-f]{32}$'),
    amount           bigint not null check (amount >= 0),
    periods          text[] not null check (cardinality(periods) > 0),
    merchant         text not null check (length(merchant) between 1 and 4),
    pat              text not null check (pat ~ '^[0-9A-F]{20}$'),
    nob              text not null check (nob ~ '^[0-9]{12}$'),
    accepted_at      timestamptz not null,
    status           text not null default 'created'
                     check (status in ('created', 'accepted', 'changed', 'rejected')),
    -- Posting outcome (meta): what the job actually paid.
    posted_at        timestamptz,
    paid_total       bigint check (paid_total >= 0),
    paid_periods     text[],
    problem_periods  text[],
    posting_attempts integer not null default 0,
    -- Set when posting failed for good; cleared by `payment requeue`.
    stuck_at         timestamptz,
    stuck_reason     text,
    reversed_at      timestamptz,
    -- Webhooks (X-Async, X-Async-Token) and the request's own Authorization header.
    callback_url     text check (length(callback_url) <= 2048),
    callback_token   text,
    request_authorization text,
    unique (partner_code, pid),
    unique (inquiry_token),
    unique (nob),
    unique (pat),
    check ((status = 'created') = (posted_at is null)),
    check (status = 'created' or paid_total is not null),
    check (reversed_at is null or status in ('accepted', 'changed')),
    check (nob like partner_code || '%')
);
create index payment_partner_day on payment (partner_code, accepted_at);
create index payment_customer on payment (customer_id);
create index payment_stuck on payment (stuck_at) where stuck_at is not null;
comment on table payment is 'Payments recorded by POST /tagihan. status goes created -> accepted|changed|rejected once; reversed_at marks a reversal.';

-- One row per period of a payment. "live" rows (payment in progress or it paid
-- that bill) are unique per customer and period: no bill can be taken twice.
create table payment_period (
    payment_id   bigint not null references payment on delete cascade,
    customer_id  text not null,
    period       text not null check (period ~ '^[0-9]{4}(0[1-9]|1[0-2])$'),
    live         boolean not null default true,
    -- Filled by posting: the bill paid and its amounts at that moment.
    bill_id      bigint,
    bill_no      text,
    water        bigint check (water >= 0),
    admin_fee    bigint check (admin_fee >= 0),
    admin_vat    bigint check (admin_vat >= 0),
    late_fee     bigint check (late_fee >= 0),
    installment  bigint check (installment >= 0),
    paid         boolean,
    primary key (payment_id, period)
);
create unique index payment_period_live on payment_period (customer_id, period) where live;
comment on table payment_period is 'The bills of a payment. paid = true: posted to the ledger (amounts as paid); false: a problem period.';
