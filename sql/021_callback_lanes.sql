-- Callback lanes (pdam/core/webhooks.py): a receiver's callbacks queue in HOST_LANES lanes,
-- each drained in order by one job at a time (`webhooks.drain`, its lock the lane), instead of
-- one job per delivery. Under load a lane's drain sends many callbacks; the queue holds at most
-- a running drain and a waiting one per lane, however long the backlog.

-- The lane a pending delivery waits in; when its next attempt may go (a retry's).
alter table webhook_delivery add column lane text;
alter table webhook_delivery add column next_attempt_at timestamptz;
comment on column webhook_delivery.lane is
    'The callback lane (receiver and payment, pdam/core/webhooks.py lane_of) whose drain job sends this delivery, in id order.';
comment on column webhook_delivery.next_attempt_at is
    'A pending retry: not sent before this time (WEBHOOK_RETRY_SECONDS after the last attempt).';

-- A lane's pending deliveries in order: what a drain reads.
create index webhook_delivery_lane on webhook_delivery (lane, id) where status = 'pending';

-- A lane's waiting drain (record's look-up, the wake-up below).
create index procrastinate_jobs_todo_lock on procrastinate_jobs (lock) where status = 'todo';

-- Deliveries pending at the upgrade keep the lane of their job (its lock, the same string);
-- one without a job gets a lane of its own payment's. Each lane then gets a drain; the
-- delivery jobs still queued run as drains of their delivery's lane (jobs/webhooks.py).
update webhook_delivery d set lane = j.lock
from procrastinate_jobs j
where d.status = 'pending' and j.task_name = 'webhooks.deliver' and j.lock is not null
  and (j.args ->> 'delivery_id')::bigint = d.id;
update webhook_delivery set lane = 'webhook-upgrade-' || payment_id
where status = 'pending' and lane is null;
insert into procrastinate_jobs (queue_name, task_name, lock, args)
select distinct 'webhooks', 'webhooks.drain', lane, jsonb_build_object('lane', lane)
from webhook_delivery where status = 'pending';

alter table webhook_delivery add constraint webhook_delivery_pending_lane
    check (status <> 'pending' or lane is not null);

-- Procrastinate wakes its workers when a job is inserted, not when a job finishes and frees
-- its lock: a drain waiting behind a running one would wait for the next poll. This sends
-- the insert's notification for the waiting job when the running one finishes.
create function pdam_wake_lock_waiter() returns trigger language plpgsql as $$
declare
    waiter record;
    payload text;
begin
    select id, queue_name into waiter from procrastinate_jobs
    where lock = new.lock and status = 'todo' order by id limit 1;
    if found then
        payload := json_build_object('type', 'job_inserted', 'job_id', waiter.id)::text;
        perform pg_notify('procrastinate_queue_v1#' || waiter.queue_name, payload);
        perform pg_notify('procrastinate_any_queue_v1', payload);
    end if;
    return new;
end;
$$;
create trigger pdam_wake_lock_waiter
    after update of status on procrastinate_jobs
    for each row when (old.status = 'doing' and new.status <> 'doing' and new.lock is not null)
    execute function pdam_wake_lock_waiter();
