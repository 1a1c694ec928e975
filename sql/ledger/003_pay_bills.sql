-- Posting's change to the ledger, keyed by the payment's nob: the bills of these
-- periods that are unpaid or already paid by this nob (a retry after a crash
-- between the ledger's commit and ours) are paid by it. Returns those bills.
create function pay_bills_v1(p_nob text, p_customer text, p_periods text[], p_now timestamptz)
returns table (id bigint, bill_no text, period text, water bigint, admin_fee bigint, admin_vat bigint,
               late_fee bigint, installment bigint, total bigint)
language plpgsql volatile as $$
begin
    -- (PL/pgSQL rather than SQL: the plan is kept for the session.)
    return query
    update bill set paid_by = p_nob,
           paid_at = case when bill.paid_by is null then p_now else bill.paid_at end
     where bill.customer_id = p_customer and bill.period = any(p_periods)
       and (bill.paid_by is null or bill.paid_by = p_nob)
    returning bill.id, bill.bill_no, bill.period, bill.water, bill.admin_fee, bill.admin_vat,
              bill.late_fee, bill.installment, bill.total;
end
$$;
