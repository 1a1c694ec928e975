-- Roles and their privileges, applied by every `flask db upgrade` after all migrations
-- (of every track, the queue's included), in each database (payments, and the ledger when
-- it is separate): so they cover every table, whichever migration made it. Idempotent, and
-- safe on a server shared by several databases (roles are the cluster's; privileges each
-- database's).
--
-- pdam_owner is whoever runs this (the login of `db upgrade`): it owns the schema.
-- pdam_app: what web, worker and commands act as (DATABASE_ROLE): reads and writes rows,
--   no DDL, no TRUNCATE, no schema_migration.
-- pdam_operator: reads every table and view (operator views, reports), never a column that
--   holds a secret (sealed ones, token hashes, the canary), writes nothing.
-- Both are NOLOGIN: people and processes log in as roles of their own that are members.

-- Created when missing (which needs CREATEROLE; an owner without it works once an
-- administrator made the two roles).
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'pdam_app') then
        create role pdam_app nologin;
    end if;
exception when duplicate_object or unique_violation then null;  -- made meanwhile
end $$;

do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'pdam_operator') then
        create role pdam_operator nologin;
    end if;
exception when duplicate_object or unique_violation then null;
end $$;

-- The owner may act as the application (the embedded default connects as the owner and
-- takes DATABASE_ROLE at once).
do $$
begin
    if not pg_has_role(current_user, 'pdam_app', 'member') then
        grant pdam_app to current_user;
    end if;
exception when insufficient_privilege then
    raise notice 'the owner cannot take pdam_app: give web and worker a login of their own in pdam_app';
end $$;

-- Nobody but the owner creates objects here (PostgreSQL 15's default, made explicit).
revoke create on schema public from public;
grant usage on schema public to pdam_app, pdam_operator;

-- Start from nothing each time, so a privilege taken away here is taken away everywhere.
revoke all on all tables in schema public from pdam_app, pdam_operator;
revoke all on all sequences in schema public from pdam_app, pdam_operator;

grant select, insert, update, delete on all tables in schema public to pdam_app;
grant usage, select on all sequences in schema public to pdam_app;
do $$
begin
    if to_regclass('schema_migration') is not null then
        revoke insert, update, delete on schema_migration from pdam_app;
    end if;
end $$;

-- The operator: whole tables, or on a table with a secret every other column.
do $$
declare
    -- A new column holding a secret must be added here (tests/infra/test_roles.py checks
    -- that the operator reads none of the sealed values).
    secret constant text[] := array[
        'partner.webhook_secret', 'snap_client.client_secret', 'payment.callback_token',
        'payment.request_authorization', 'snap_access_token.token_hash', 'secret_canary.sealed'];
    t record;
    readable text;
begin
    for t in
        select c.oid, c.relname from pg_class c
        where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'v', 'm', 'p')
    loop
        select string_agg(quote_ident(a.attname), ', ' order by a.attnum) into readable
        from pg_attribute a
        where a.attrelid = t.oid and a.attnum > 0 and not a.attisdropped
          and t.relname || '.' || a.attname <> all (secret);
        if readable is null then
            continue;
        elsif exists (select 1 from unnest(secret) s where split_part(s, '.', 1) = t.relname) then
            execute format('grant select (%s) on %I to pdam_operator', readable, t.relname);
        else
            execute format('grant select on %I to pdam_operator', t.relname);
        end if;
    end loop;
end $$;
