-- The partner's callbacks log (contract 14.2): GET /callbacks reads a partner's deliveries
-- newest first, POST /callbacks/<event_id>/resend finds an event's deliveries and counts its
-- resends of the last hour. A delivery refused later (its URL's name resolved to an address
-- the service does not call) is shown to operators with the failed ones.

create index webhook_delivery_event on webhook_delivery (event_id, id);
create index webhook_delivery_refused on webhook_delivery (payment_id) where status = 'refused';

create or replace view payment_attention as
    select p.id, 'changed'::text as reason, p.posted_at as since,
           'paid ' || coalesce(p.paid_total, 0) || ' of amo ' || p.amount
           || coalesce(', not paid: ' || nullif(array_to_string(p.problem_periods, ' '), ''), '') as detail,
           'check with the partner; reverse or settle the difference'::text as action
    from payment p where p.status = 'changed' and not p.sandbox
    union all
    select p.id, 'rejected', p.posted_at, 'every period was paid before: ' || array_to_string(p.periods, ' '),
           'refund the customer through the partner'
    from payment p where p.status = 'rejected' and not p.sandbox
    union all
    select p.id, 'stuck', p.stuck_at, p.stuck_reason,
           'fix the cause, then: flask --app wsgi payment requeue ' || p.nob
    from payment p where p.stuck_at is not null and p.status = 'created' and not p.sandbox
    union all
    select p.id, 'slow', p.accepted_at, 'in progress for ' || date_trunc('second', now() - p.accepted_at),
           'check the worker and the queue; flask --app wsgi payment requeue ' || p.nob
    from payment p
    where p.status = 'created' and p.stuck_at is null and p.accepted_at < now() - interval '10 minutes'
      and not p.sandbox
    union all
    -- Given up after the retries, or refused without an answer: the address its URL's name
    -- resolved to is one the service does not call (last_error 'refused: ...').
    select w.payment_id, 'webhook failed', coalesce(w.last_attempt_at, w.created_at),
           w.event || ' to ' || w.url || ' after ' || w.attempts || ' attempts: ' || coalesce(w.last_error, '?'),
           'flask --app wsgi webhook resend ' || p.nob || ' --event ' || w.event_id
    from webhook_delivery w join payment p on p.id = w.payment_id
    where (w.status = 'failed' or (w.status = 'refused' and w.last_error like 'refused: %'))
      and not p.sandbox;
