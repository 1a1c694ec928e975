-- What an inquiry reads of the ledger, once for both paths (the ledger in the payments
-- database, or a database of its own): the customer and its unpaid bills, oldest first,
-- as jsonb with the core's names (an empty array when it owes nothing); no row when the
-- customer does not exist.
create function customer_bills_v1(p_cid text) returns table (customer_row jsonb, unpaid jsonb)
language plpgsql stable as $$
begin
    -- (PL/pgSQL rather than SQL: the plan is kept for the session.)
    return query
    select jsonb_build_object('id', c.id, 'name', c.name, 'address', c.address, 'tariff', c.tariff),
           coalesce((select jsonb_agg(jsonb_build_object(
                        'bill_no', b.bill_no, 'period', b.period, 'meter_start', b.meter_start,
                        'meter_end', b.meter_end, 'usage', b.usage, 'water', b.water,
                        'admin_fee', b.admin_fee, 'admin_vat', b.admin_vat, 'late_fee', b.late_fee,
                        'installment', b.installment, 'total', b.total) order by b.period)
                     from bill b where b.customer_id = c.id and b.paid_by is null), '[]'::jsonb)
    from customer c where c.id = p_cid;
end
$$;
