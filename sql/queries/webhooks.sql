-- Webhook callbacks: deliveries (one per event of a payment) and their attempts.

-- insert_delivery --
insert into webhook_delivery (payment_id, event, url, body, lane, created_at)
values (:payment_id, :event, :url, cast(:body as jsonb), :lane, :now)
returning id

-- payment_by_nob --
select id, callback_url from payment where nob = :nob

-- last_delivery --
select id, payment_id, event, event_id, url from webhook_delivery where payment_id = :id order by id desc limit 1

-- last_delivery_of_event --
select id, payment_id, event, event_id, url from webhook_delivery
where payment_id = :id and event_id = cast(:event_id as uuid)
order by id desc limit 1

-- copy_delivery --
-- An operator's resend: the same event, body and event id, as a new delivery.
insert into webhook_delivery (payment_id, event, event_id, url, body, lane, created_at, resend_of)
select payment_id, event, event_id, url, body, :lane, :now, id from webhook_delivery where id = :id
returning id

-- load --
-- A delivery with what sending it needs: the payment's callback credentials and the
-- partner's signing secret.
select d.id, d.payment_id, d.event, d.event_id, d.url, d.body, d.status, d.attempts,
       d.first_attempt_at, d.next_attempt_at, p.nob, p.callback_protocol as protocol, p.sandbox,
       p.callback_token, p.request_authorization, pa.webhook_secret, d.open_sends
from webhook_delivery d join payment p on p.id = d.payment_id
join partner pa on pa.code = p.partner_code
where d.id = :id

-- pending --
-- A lane's first pending deliveries after :after in order, as `load` gives one. The first,
-- when it is due, counts an open send (before it is sent: a send that kills its worker
-- stays counted); one statement, committed by itself (`alone`).
with head as (
    update webhook_delivery set open_sends = open_sends + 1
    where id = (
        select id from webhook_delivery
        where lane = :lane and status = 'pending' and id > :after order by id limit 1
    ) and (next_attempt_at is null or next_attempt_at <= :now)
    returning id, open_sends
)
select d.id, d.payment_id, d.event, d.event_id, d.url, d.body, d.status, d.attempts,
       d.first_attempt_at, d.next_attempt_at, p.nob, p.callback_protocol as protocol, p.sandbox,
       p.callback_token, p.request_authorization, pa.webhook_secret,
       coalesce(h.open_sends, d.open_sends) as open_sends
from webhook_delivery d join payment p on p.id = d.payment_id
join partner pa on pa.code = p.partner_code
left join head h on h.id = d.id
where d.lane = :lane and d.status = 'pending' and d.id > :after
order by d.id
limit :limit

-- record --
-- An attempt (kept whatever happens) and the delivery after it, in one statement; the
-- delivery's update is guarded by the attempt count it was read with.
with attempt as (
    insert into webhook_attempt (delivery_id, attempted_at, url, http_status, error, duration_ms)
    values (:id, :at, :url, :http_status, left(:error, 1000), :duration_ms)
)
update webhook_delivery set attempts = attempts + 1, status = :status,
       first_attempt_at = coalesce(first_attempt_at, :at), last_attempt_at = :at,
       last_error = left(:error, 1000), delivered_at = :delivered_at,
       next_attempt_at = :next_attempt_at, open_sends = 0
where id = :id and status = 'pending' and attempts = :attempts

-- give_up --
update webhook_delivery set status = 'failed', last_error = left(:reason, 1000)
where id = :id and status = 'pending'

-- due_lanes --
-- Lanes whose first pending callback is due (recorded, or a retry whose time has come):
-- what the dispatchers' sweep takes up.
select lane from (
    select distinct on (lane) lane, next_attempt_at from webhook_delivery
    where status = 'pending' order by lane, id
) head
where next_attempt_at is null or next_attempt_at <= :now
order by lane

-- listen --
-- The dispatchers' channel: every pending delivery inserted announces its lane on it
-- (sql/022_callback_dispatcher.sql).
listen pdam_callbacks

-- take_lane --
-- A lane's sender, across every worker process: a session advisory lock on the
-- dispatcher's own connection (let go when that connection ends). Two lanes whose hashes
-- meet share a lock (the later one waits for the sweep).
select pg_try_advisory_lock(1346651469, hashtext(:lane))

-- leave_lane --
select pg_advisory_unlock(1346651469, hashtext(:lane))
