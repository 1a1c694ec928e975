-- What an operator's login may and may not do (docs/operators.md, "Database roles"):
--   psql "postgresql://ana@/pdam?host=$PWD/instance/pgdata" -e -f ops/operator-check.sql
select current_user, pg_has_role('pdam_operator', 'member') as operator;
select code, name, active from partner;
select webhook_secret from partner;
select tanggal, pop, transaksi from daily_recap;
update payment set status = 'rejected';
