-- The partner's callbacks log (pdam/core/callbacks.py, contract 14.2).

-- log --
-- A partner's deliveries of one side (live or sandbox), newest first, filtered; :before is
-- the cursor (the last id of the previous page). last_http_status/last_error: its last attempt.
select d.id, d.event_id, p.nob, p.pid, d.event, d.url, d.status, d.attempts, d.created_at,
       d.last_attempt_at, d.next_attempt_at, d.last_error, a.http_status as last_http_status
from webhook_delivery d
join payment p on p.id = d.payment_id
left join lateral (
    select x.http_status from webhook_attempt x where x.delivery_id = d.id order by x.id desc limit 1
) a on true
where p.partner_code = :partner and p.sandbox = :sandbox
  and d.status = any(cast(:statuses as text[]))
  and (cast(:nob as text) is null or p.nob = :nob)
  and (cast(:since as timestamptz) is null or d.created_at >= :since)
  and (cast(:before as bigint) is null or d.id < :before)
order by d.id desc
limit :limit

-- event --
-- The partner's latest delivery of an event (live or sandbox side), its first delivery
-- locked: concurrent resends of one event are counted one after the other.
with first as (
    select d.id from webhook_delivery d join payment p on p.id = d.payment_id
    where d.event_id = cast(:event_id as uuid) and p.partner_code = :partner and p.sandbox = :sandbox
    order by d.id limit 1
    for update of d
)
select d.id, d.payment_id, d.event, d.event_id, d.url
from webhook_delivery d
where d.event_id = cast(:event_id as uuid) and exists (select 1 from first)
order by d.id desc limit 1

-- resends_since --
select count(*) from webhook_delivery
where event_id = cast(:event_id as uuid) and resend_of is not null and created_at > :since

-- oldest_resend_since --
select min(created_at) from webhook_delivery
where event_id = cast(:event_id as uuid) and resend_of is not null and created_at > :since
