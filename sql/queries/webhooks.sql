-- Webhook callbacks: deliveries (one per event of a payment) and their attempts.

-- insert_delivery --
insert into webhook_delivery (payment_id, event, url, body, lane, created_at)
values (:payment_id, :event, :url, cast(:body as jsonb), :lane, :now)
returning id

-- waiting_drain --
-- The lane's drain job waiting to run, if any, held until the caller's commit: a worker's
-- fetch (for update skip locked) passes it by until the caller's deliveries are visible.
select id from procrastinate_jobs where lock = :lane and status = 'todo'
order by id limit 1
for share

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
       p.callback_token, p.request_authorization, pa.webhook_secret
from webhook_delivery d join payment p on p.id = d.payment_id
join partner pa on pa.code = p.partner_code
where d.id = :id

-- pending --
-- A lane's first pending deliveries after :after in order, as `load` gives one.
select d.id, d.payment_id, d.event, d.event_id, d.url, d.body, d.status, d.attempts,
       d.first_attempt_at, d.next_attempt_at, p.nob, p.callback_protocol as protocol, p.sandbox,
       p.callback_token, p.request_authorization, pa.webhook_secret
from webhook_delivery d join payment p on p.id = d.payment_id
join partner pa on pa.code = p.partner_code
where d.lane = :lane and d.status = 'pending' and d.id > :after
order by d.id
limit :limit

-- lane_of_delivery --
select lane from webhook_delivery where id = :id

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
       next_attempt_at = :next_attempt_at
where id = :id and status = 'pending' and attempts = :attempts

-- give_up --
update webhook_delivery set status = 'failed', last_error = left(:reason, 1000)
where id = :id and status = 'pending'

-- lane_head --
select id from webhook_delivery where lane = :lane and status = 'pending' order by id limit 1

-- stranded_lanes --
-- Lanes with a callback due and no drain waiting or running (a drain that failed on a bug,
-- a lane from before the lanes): what the maintenance sweep wakes.
select distinct d.lane from webhook_delivery d
where d.status = 'pending' and (d.next_attempt_at is null or d.next_attempt_at <= :now)
  and not exists (
      select 1 from procrastinate_jobs j where j.lock = d.lane and j.status in ('todo', 'doing')
  )
order by d.lane
