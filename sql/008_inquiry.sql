-- The inquiry's rule of what it shows, once for both of its statements.

-- The bills (a jsonb array of objects with a "period") an inquiry of customer p_cid
-- shows: all but the periods a payment not posted yet holds, in the given order (so a
-- partner is never shown a bill that would be refused as being paid).
create function shown_bills_v1(p_cid text, p_bills jsonb) returns jsonb
language plpgsql stable as $$
begin
    return (
        select coalesce(jsonb_agg(e.bill order by e.n), '[]'::jsonb)
        from jsonb_array_elements(p_bills) with ordinality as e(bill, n)
        where not exists (
            select 1 from payment_period pp join payment p on p.id = pp.payment_id
            where pp.customer_id = p_cid and pp.period = e.bill->>'period' and pp.live
              and p.status = 'created'
        )
    );
end
$$;
