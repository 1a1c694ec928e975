-- Partner tokens (JWT) issued by the token CLI.

-- record --
insert into api_token (jti, partner_code, issued_at, expires_at, sandbox) values (:jti, :code, :iat, :exp, :sandbox)

-- list --
select jti, partner_code, issued_at, expires_at, revoked_at, revoke_reason, sandbox
from api_token where (cast(:code as text) is null or partner_code = :code)
order by issued_at, jti

-- revoke --
update api_token set revoked_at = coalesce(revoked_at, :now), revoke_reason = coalesce(revoke_reason, :reason)
where jti = :jti

-- partner_check --
-- The partner of a token, whether the CLI issued that token to it, whether it is
-- revoked, and one token of the partner's rate limit (rate_wait 0: taken, else the
-- seconds until the next), in one round trip. sandbox: the token is a sandbox one (the
-- partner it authenticates is its sandbox side: records.Partner.sandbox); its requests have
-- a bucket of their own ("<code>+sandbox"): a sandbox test never slows the live traffic.
-- address_ok: the request's :address is one the partner's live tokens may be used from
-- (a sandbox token: any); a request from elsewhere takes no rate token.
select p.code, p.name, p.active, p.created_at, t.jti is not null as known, t.revoked_at is not null as revoked,
       case when a.ok then take_rate_token_v1(p.code || case when t.sandbox then '+sandbox' else '' end, :rate)
            else 0 end as rate_wait,
       coalesce(t.sandbox, false) as sandbox, a.ok as address_ok
from partner p left join api_token t on t.jti = :jti and t.partner_code = p.code
cross join lateral (
    select coalesce(t.sandbox, false) or address_allowed_v1(p.allowed_addresses, :address) as ok
) a
where p.code = :code
