-- shown_bills_v1 (008) joined payment_period to payment, and the planner started that
-- join from payment_created: every inquiry read the index entries of every payment not
-- posted yet (all of them while the worker is behind or stopped: 0.5 ms per inquiry at
-- 3,000 waiting payments, growing with the backlog). The rule is unchanged; the payment
-- is now looked up by its key from the customer's live period, at most one row per bill.
create or replace function shown_bills_v1(p_cid text, p_bills jsonb) returns jsonb
language plpgsql stable as $$
begin
    return (
        select coalesce(jsonb_agg(e.bill order by e.n), '[]'::jsonb)
        from jsonb_array_elements(p_bills) with ordinality as e(bill, n)
        where not exists (
            select 1 from payment_period pp
            where pp.customer_id = p_cid and pp.period = e.bill->>'period' and pp.live
              and (select p.status from payment p where p.id = pp.payment_id) = 'created'
        )
    );
end
$$;
