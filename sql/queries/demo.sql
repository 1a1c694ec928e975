-- The demo partner's data, for `demo reset` (pdam/core/demo.py). Never another partner's.

-- payments --
select nob, status,
       exists (select 1 from webhook_delivery d
                where d.payment_id = p.id and d.status = 'pending') as callback_pending
  from payment p
 where partner_code = :code

-- unpay_bills --
update bill set paid_by = null, paid_at = null where paid_by = any(:nobs)

-- delete_payments --
with gone as (
    select id from payment where partner_code = :code for update
), attempts as (
    delete from webhook_attempt a using webhook_delivery d, gone g
     where a.delivery_id = d.id and d.payment_id = g.id
), deliveries as (
    delete from webhook_delivery d using gone g where d.payment_id = g.id
), payments as (
    delete from payment p using gone g where p.id = g.id returning p.status
), counts as (
    update payment_status_count c set n = c.n - x.n
      from (select status, count(*) as n from payments group by status) x
     where c.status = x.status and c.shard = 0
)
select count(*) as n from payments

-- delete_inquiries --
delete from inquiry where partner_code = :code

-- delete_snap_answers --
delete from snap_external_id e using snap_client c
 where e.client_id = c.client_id and c.partner_code = :code
