-- The inquiry's rules, once for its statements.

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

-- An inquiry of the customer and bills the ledger gave (customer_bills_v1), saved under
-- p_token with what shown_bills_v1 shows. Returns the bills shown, and the token (null
-- when no bill is left to show: then nothing is saved).
create function save_inquiry_v1(
    p_token text, p_partner text, p_cid text, p_customer jsonb, p_bills jsonb,
    p_now timestamptz, p_expires timestamptz
) returns table (shown jsonb, saved_token text)
language plpgsql volatile as $$
declare
    v_shown jsonb := shown_bills_v1(p_cid, p_bills);
begin
    if jsonb_array_length(v_shown) = 0 then
        return query select v_shown, null::text;
        return;
    end if;
    insert into inquiry (token, partner_code, customer_id, snapshot, created_at, expires_at)
    values (p_token, p_partner, p_cid, jsonb_build_object('customer', p_customer, 'bills', v_shown),
            p_now, p_expires);
    return query select v_shown, p_token;
end
$$;
