-- Callbacks leave the job table (jobs/webhooks.py Dispatcher): each worker process's
-- dispatcher hears of a callback recorded (the notification below, sent at commit), takes
-- its lane (a session advisory lock: one sender per lane across every process, let go when
-- the process dies) and sends the lane's pending deliveries in order, as the lane's drain
-- job did. A retry waits in `next_attempt_at`; the dispatchers' sweep finds a lane whose
-- first callback is due. Procrastinate keeps posting and maintenance: one job per payment
-- instead of up to three.

-- Every pending delivery inserted (a payment's event, an operator's or a partner's resend)
-- announces its lane on commit. The channel's name is also the dispatcher's LISTEN
-- (sql/queries/webhooks.sql `listen`).
create function pdam_announce_callback() returns trigger language plpgsql as $$
begin
    perform pg_notify('pdam_callbacks', new.lane);
    return null;
end;
$$;
create trigger pdam_announce_callback
    after insert on webhook_delivery
    for each row when (new.status = 'pending')
    execute function pdam_announce_callback();

-- A delivery's sends that did not come back: the dispatcher counts one up before it sends a
-- lane's first due callback, an attempt recorded sets it back to 0. A callback whose
-- sending kills its worker again and again is given up after STALLED_MAX_RETRIES.
alter table webhook_delivery add column open_sends integer not null default 0;
comment on column webhook_delivery.open_sends is
    'Sends begun whose attempt is not recorded: 1 while a lane''s first callback is being sent, more when its worker died sending it.';

-- The drains' jobs are gone: queued ones are cancelled (the sweep finds their lanes), and
-- the lock machinery that woke a drain waiting behind its lane's running one goes with them.
update procrastinate_jobs set status = 'cancelled'
where status = 'todo' and task_name in ('webhooks.drain', 'webhooks.deliver');
drop trigger pdam_wake_lock_waiter on procrastinate_jobs;
drop function pdam_wake_lock_waiter();
drop index procrastinate_jobs_todo_lock;
