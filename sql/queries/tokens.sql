-- Partner tokens (JWT) issued by the token CLI.

-- record --
insert into api_token (jti, partner_code, issued_at, expires_at) values (:jti, :code, :iat, :exp)

-- list --
select jti, partner_code, issued_at, expires_at, revoked_at, revoke_reason
from api_token where (cast(:code as text) is null or partner_code = :code)
order by issued_at, jti

-- revoke --
update api_token set revoked_at = coalesce(revoked_at, :now), revoke_reason = coalesce(revoke_reason, :reason)
where jti = :jti

-- partner_check --
-- The partner of a token, whether the CLI issued that token to it, whether it is
-- revoked, and one token of the partner's rate limit (rate_wait 0: taken, else the
-- seconds until the next), in one round trip.
select p.code, p.name, p.active, p.created_at, t.jti is not null as known, t.revoked_at is not null as revoked,
       take_rate_token_v1(p.code, :rate) as rate_wait
from partner p left join api_token t on t.jti = :jti and t.partner_code = p.code
where p.code = :code
