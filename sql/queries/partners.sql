-- Partners (mitra).

-- add --
insert into partner (code, name, webhook_secret) values (:code, :name, :secret)
on conflict (code) do nothing

-- get --
select code, name, active, webhook_secret, created_at from partner where code = :code

-- set_active --
update partner set active = :active where code = :code

-- all --
select p.code, p.name, p.active, p.created_at,
       (select count(*) from api_token t where t.partner_code = p.code
          and t.revoked_at is null and t.expires_at > now()) as live_tokens,
       cast(p.allowed_addresses as text[]) as allowed_addresses
from partner p order by p.code

-- set_secret --
update partner set webhook_secret = :secret where code = :code

-- allow --
-- partner allow: the networks its live tokens may be used from (null: any).
update partner set allowed_addresses = cast(:networks as cidr[]) where code = :code
