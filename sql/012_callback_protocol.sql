-- The protocol of a payment's callback: the edge that took the callback renders its events
-- and sends them (pdam/core/events.py). Every callback so far came through PeTi's X-Async:
-- the payments already stored get 'peti' (by the column's default, which writes no row: an
-- update would meet 009's sealed checks before the upgrade seals the old values); a new
-- payment gets its callback's protocol, null without a callback.
alter table payment add column callback_protocol text default 'peti'
    check (length(callback_protocol) between 1 and 32);
alter table payment alter column callback_protocol drop default;
comment on column payment.callback_protocol is
    'The protocol (edge) that took the callback, renders its events and sends them; null without a callback.';
