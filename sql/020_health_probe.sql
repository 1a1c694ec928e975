-- /health's commit probe (pdam/infra/probe.py): one row, updated and committed by each web
-- process's probe. A commit writes WAL only when the transaction changed something, and only
-- then waits for a synchronous standby: this row is what lets /health say whether the
-- database can commit (not just answer a select).
create table health_probe (
    id boolean primary key default true check (id),
    beats bigint not null default 0,
    at timestamptz
);
insert into health_probe (id) values (true);
