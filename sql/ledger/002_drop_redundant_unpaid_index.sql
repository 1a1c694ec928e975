-- The partial index on unpaid bills duplicated the unique (customer_id, period)
-- index for every lookup the service makes, and slowed every bill insert.
drop index if exists bill_unpaid;
