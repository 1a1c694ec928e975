-- shown_bills_v1 (008) joined payment_period to payment, and the planner started that
-- join from payment_created: every inquiry read the index entries of every payment not
-- posted yet (all of them while the worker is behind or stopped: 0.3-0.5 ms per inquiry at
-- 3,000 waiting payments, growing with the backlog). The rule is unchanged and now reads
-- the customer's own periods only: a live period whose payment is not posted yet is one
-- with paid null, since finish_posting_v1 (005), the only statement that moves a payment
-- out of 'created', sets paid on every period of the payment in the same transaction.
-- No join is left for a plan cached while the tables were small to get wrong.
create or replace function shown_bills_v1(p_cid text, p_bills jsonb) returns jsonb
language plpgsql stable as $$
begin
    return (
        select coalesce(jsonb_agg(e.bill order by e.n), '[]'::jsonb)
        from jsonb_array_elements(p_bills) with ordinality as e(bill, n)
        where not exists (
            select 1 from payment_period pp
            where pp.customer_id = p_cid and pp.period = e.bill->>'period' and pp.live
              and pp.paid is null
        )
    );
end
$$;
