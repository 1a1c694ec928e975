-- /health's probe (pdam/infra/probe.py), on a connection of its own.

-- answers --
select 1

-- beat --
-- A change to commit: the commit waits for a synchronous standby as a payment's does.
update health_probe set beats = beats + 1, at = now() where id
