-- The billing ledger: importing bills (flask --app wsgi bills import).

-- no_statement_timeout --
-- A bulk load is not a request: the service's statement timeout (DB_STATEMENT_TIMEOUT_MS)
-- would cut a large file's upsert short. lock_timeout still applies.
set local statement_timeout = 0

-- create_staging --
create temporary table bill_import (
    line int, cid text, nama text, alamat text, golongan text, bill_id text,
    periode text, meter_awal bigint, meter_akhir bigint, pakai bigint, air bigint,
    administrasi bigint, ppn_administrasi bigint, denda bigint, angsuran bigint
) on commit drop

-- copy_staging --
copy bill_import (line, cid, nama, alamat, golongan, bill_id, periode, meter_awal, meter_akhir,
                  pakai, air, administrasi, ppn_administrasi, denda, angsuran) from stdin

-- conflicts --
-- A bill of the file that exists paid, or whose bill_id or (cid, periode) belongs to
-- another bill. Two equi-joins (hash joins) rather than one join on "a or b", which
-- PostgreSQL can only run as a nested loop of index probes, one per imported row.
select i.line, i.cid, i.periode, b.paid_by, b.bill_no, b.customer_id, b.period
from bill_import i join bill b on b.customer_id = i.cid and b.period = i.periode
where b.paid_by is not null or b.bill_no <> i.bill_id
union
select i.line, i.cid, i.periode, b.paid_by, b.bill_no, b.customer_id, b.period
from bill_import i join bill b on b.bill_no = i.bill_id
where b.paid_by is not null or b.customer_id <> i.cid or b.period <> i.periode
order by line limit :n

-- upsert_customers --
insert into customer (id, name, address, tariff)
select distinct on (cid) cid, nama, alamat, golongan from bill_import order by cid, line desc
on conflict (id) do update set name = excluded.name, address = excluded.address, tariff = excluded.tariff

-- upsert_bills --
-- Unpaid bills are updated, paid ones never (counted: the caller refuses the file
-- when a bill was paid between the check and this statement).
with up as (
    insert into bill (bill_no, customer_id, period, meter_start, meter_end, usage,
                      water, admin_fee, admin_vat, late_fee, installment)
    select bill_id, cid, periode, meter_awal, meter_akhir, pakai, air, administrasi,
           ppn_administrasi, denda, angsuran from bill_import
    on conflict (customer_id, period) do update set
        meter_start = excluded.meter_start, meter_end = excluded.meter_end,
        usage = excluded.usage, water = excluded.water, admin_fee = excluded.admin_fee,
        admin_vat = excluded.admin_vat, late_fee = excluded.late_fee,
        installment = excluded.installment
        where bill.paid_by is null
    returning (xmax = 0) as inserted
)
select count(*) filter (where inserted) as inserted, count(*) filter (where not inserted) as updated from up
