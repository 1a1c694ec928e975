-- The sandbox (contract 14.1): a partner's reset, and the retention purge of the
-- maintenance task. :partner null: every partner; :before null: every row.

-- delete_attempts --
delete from webhook_attempt a using webhook_delivery d, payment p
where a.delivery_id = d.id and d.payment_id = p.id and p.sandbox
  and (cast(:partner as text) is null or p.partner_code = :partner)
  and (cast(:before as timestamptz) is null or p.accepted_at < :before)

-- delete_deliveries --
delete from webhook_delivery d using payment p
where d.payment_id = p.id and p.sandbox
  and (cast(:partner as text) is null or p.partner_code = :partner)
  and (cast(:before as timestamptz) is null or p.accepted_at < :before)

-- delete_payments --
-- Their periods and SNAP values go with them (on delete cascade).
delete from payment p
where p.sandbox
  and (cast(:partner as text) is null or p.partner_code = :partner)
  and (cast(:before as timestamptz) is null or p.accepted_at < :before)

-- delete_inquiries --
delete from inquiry i
where i.sandbox
  and (cast(:partner as text) is null or i.partner_code = :partner)
  and (cast(:before as timestamptz) is null or i.created_at < :before)
  and not exists (select 1 from payment p where p.inquiry_token = i.token)

-- delete_external_ids --
-- The answers kept for the sandbox SNAP clients' X-EXTERNAL-IDs (they name the deleted payments).
delete from snap_external_id x using snap_client c
where x.client_id = c.client_id and c.sandbox
  and (cast(:partner as text) is null or c.partner_code = :partner)
  and (cast(:before as timestamptz) is null or x.created_at < :before)
