-- The billing ledger: customers (pelanggan) and their bills (tagihan).
-- It lives in the payments database unless BILLING_DATABASE_URL names another.

create table customer (
    id       text primary key check (id ~ '^[0-9]{1,20}$'),
    name     text not null check (length(name) between 1 and 200),
    address  text not null default '',
    tariff   text not null default ''
);
comment on table customer is 'Pelanggan. id is the customer number (nomor sambungan / cid).';

create table bill (
    id            bigint generated always as identity primary key,
    bill_no       text not null unique check (length(bill_no) between 1 and 40),
    customer_id   text not null references customer,
    period        text not null check (period ~ '^[0-9]{4}(0[1-9]|1[0-2])$'),
    meter_start   bigint not null check (meter_start >= 0),
    meter_end     bigint not null check (meter_end >= 0),
    usage         bigint not null check (usage >= 0),
    water         bigint not null check (water >= 0),
    admin_fee     bigint not null check (admin_fee >= 0),
    admin_vat     bigint not null check (admin_vat >= 0),
    late_fee      bigint not null check (late_fee >= 0),
    installment   bigint not null check (installment >= 0),
    -- Derived, never stored twice: jumlah on the wire.
    total         bigint generated always as (water + admin_fee + admin_vat + late_fee + installment) stored,
    -- The nob of the payment that paid this bill; set and cleared only by guarded updates.
    paid_by       text check (paid_by ~ '^[0-9]{12}$'),
    paid_at       timestamptz,
    unique (customer_id, period),
    check ((paid_by is null) = (paid_at is null))
);
create index bill_unpaid on bill (customer_id, period) where paid_by is null;
create index bill_paid_by on bill (paid_by) where paid_by is not null;
comment on table bill is 'Tagihan: one bill per customer and period, amounts in whole rupiah. paid_by is the nob of the payment that paid it (null = unpaid).';
comment on column bill.id is 'rid in the reconciliation report.';
comment on column bill.bill_no is 'The bill id shown to partners (tagihan[].id).';
