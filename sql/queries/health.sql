-- /health (pdam/web/health.py).

-- ping --
-- The database answers.
select 1
