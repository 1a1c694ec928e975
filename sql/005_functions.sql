-- Rules that serve more than one statement or path, as versioned functions.
-- A changed rule is a new version (next_nob_v2 ...), never an edited one.

-- The next receipt number of a partner's WIB day: partner code + YYMMDD + the
-- partner's daily sequence. The counter row stays locked until the caller's
-- transaction ends, so numbers are never shared (a rollback leaves a gap, never a
-- duplicate); null when the day's 9,999 numbers are used up.
-- (PL/pgSQL rather than SQL: its statements' plans are kept for the session, an SQL
-- function's are made again on every call.)
create function next_nob_v1(p_partner text, p_day date) returns text
language plpgsql volatile as $$
declare
    v_nob text;
begin
    insert into nob_counter (partner_code, day, last_value) values (p_partner, p_day, 1)
    on conflict (partner_code, day) do update set last_value = nob_counter.last_value + 1
        where nob_counter.last_value < 9999
    returning p_partner || to_char(day, 'YYMMDD') || lpad(last_value::text, 4, '0') into v_nob;
    return v_nob;
end
$$;

-- Posting's outcome rules (contract section 5), once for both paths. The caller
-- holds the payment's row lock and passes the bills the ledger paid for it (as
-- parallel arrays: the ledger may be another database). Guarded: nothing changes
-- unless the payment is still 'created'. Returns the finished payment (no row when
-- it was not 'created').
create function finish_posting_v1(
    p_id bigint, p_now timestamptz,
    p_bill_id bigint[], p_bill_no text[], p_period text[], p_water bigint[], p_admin_fee bigint[],
    p_admin_vat bigint[], p_late_fee bigint[], p_installment bigint[], p_total bigint[]
) returns setof payment
language plpgsql volatile as $$
declare
    v_paid_total bigint;
    v_paid text[];
    v_row payment;
begin
    select coalesce(sum(t), 0), coalesce(array_agg(x order by x), '{}')
      into v_paid_total, v_paid
      from unnest(p_period, p_total) as paid(x, t);
    -- The outcome and the meta in one guarded update (problems: the periods not paid).
    update payment set
           problem_periods = array(select x from unnest(payment.periods) as x where not (x = any(v_paid)) order by x),
           status = case when cardinality(v_paid) = 0 then 'rejected'
                         when cardinality(v_paid) < cardinality(payment.periods) or v_paid_total <> amount
                         then 'changed'
                         else 'accepted' end,
           posted_at = p_now, paid_total = v_paid_total, paid_periods = v_paid,
           stuck_at = null, stuck_reason = null
     where id = p_id and status = 'created'
    returning * into v_row;
    if not found then
        return;
    end if;
    update payment_period pp set bill_id = b.id, bill_no = b.bill_no, water = b.water,
           admin_fee = b.admin_fee, admin_vat = b.admin_vat, late_fee = b.late_fee,
           installment = b.installment, paid = true
      from unnest(p_bill_id, p_bill_no, p_period, p_water, p_admin_fee, p_admin_vat, p_late_fee,
                  p_installment) as b(id, bill_no, period, water, admin_fee, admin_vat, late_fee, installment)
     where pp.payment_id = p_id and pp.period = b.period;
    if cardinality(v_row.problem_periods) > 0 then
        update payment_period set paid = false, live = false
         where payment_id = p_id and period = any(v_row.problem_periods);
    end if;
    return next v_row;
end
$$;

-- Posting with the ledger in this database: lock, pay (pay_bills_v1, the ledger
-- track's function), finish. Returns the finished payment; no row when the payment
-- does not exist or is already final (a job that runs twice changes nothing).
create function post_payment_v1(p_id bigint, p_now timestamptz) returns setof payment
language plpgsql volatile as $$
declare
    v payment;
    b record;
begin
    select * into v from payment where id = p_id for update;
    if not found or v.status <> 'created' then
        return;
    end if;
    select array_agg(id) as id, array_agg(bill_no) as bill_no, array_agg(period) as period,
           array_agg(water) as water, array_agg(admin_fee) as admin_fee, array_agg(admin_vat) as admin_vat,
           array_agg(late_fee) as late_fee, array_agg(installment) as installment, array_agg(total) as total
      into b from pay_bills_v1(v.nob, v.customer_id, v.periods, p_now);
    return query select * from finish_posting_v1(
        p_id, p_now, coalesce(b.id, '{}'), coalesce(b.bill_no, '{}'), coalesce(b.period, '{}'),
        coalesce(b.water, '{}'), coalesce(b.admin_fee, '{}'), coalesce(b.admin_vat, '{}'),
        coalesce(b.late_fee, '{}'), coalesce(b.installment, '{}'), coalesce(b.total, '{}'));
end
$$;
