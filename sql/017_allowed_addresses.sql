-- Contract 14.4: a bank's trxDateTime with fractional seconds (up to microseconds,
-- 32 characters) is kept and echoed as sent.
alter table snap_payment drop constraint snap_payment_trx_date_time_check;
alter table snap_payment add constraint snap_payment_trx_date_time_check
    check (length(trx_date_time) between 1 and 32);
