-- What a SNAP payment answers with the bank's own values (contract 12.6): the
-- referenceNo and trxDateTime of the payment request that recorded it, kept so the
-- same paymentRequestId again (a retry under a new X-EXTERNAL-ID) and the status
-- route answer exactly what the first answer said. A row per payment made over SNAP
-- (none for PeTi payments); a field the bank did not send is null.
create table snap_payment (
    payment_id     bigint primary key references payment on delete cascade,
    reference_no   text check (length(reference_no) between 1 and 64),
    trx_date_time  text check (length(trx_date_time) between 1 and 25)
);
comment on table snap_payment is
    'The bank''s referenceNo and trxDateTime of a SNAP payment request, as sent: its answers (the '
    'payment again, the status) repeat them. Written in the transaction that records the payment.';
