-- Reconciliation (contract section 9): the rows of the reconciliation view
-- (sql/004_operator_views.sql), so partners and operators read the same report.

-- rows --
-- One page of a partner's rows of a WIB day, in the contract's column order, under the
-- names of the core's ReconciliationLine (:limit null = every row).
select no as line_no, id as bill_no, nob, nopel as customer_id, periode as period, rid as bill_id,
       pid, mer as merchant, rev as reversed, air as water, administrasi as admin_fee,
       administrasi_angsuran as admin_installment, ppn_administrasi as admin_vat,
       denda as late_fee, angsuran as installment, materai as stamp_duty, registrasi as registration,
       biaya_pemasangan as installation_fee, ppn_pemasangan as installation_vat,
       biaya_jarak as distance_fee
from reconciliation
where pop = :partner and tanggal = :day
order by no
limit :limit offset :offset

-- count --
select count(*) from reconciliation where pop = :partner and tanggal = :day

-- sandbox_rows --
-- ``rows`` of the sandbox (sandbox_reconciliation), under the same names.
select no as line_no, id as bill_no, nob, nopel as customer_id, periode as period, rid as bill_id,
       pid, mer as merchant, rev as reversed, air as water, administrasi as admin_fee,
       administrasi_angsuran as admin_installment, ppn_administrasi as admin_vat,
       denda as late_fee, angsuran as installment, materai as stamp_duty, registrasi as registration,
       biaya_pemasangan as installation_fee, ppn_pemasangan as installation_vat,
       biaya_jarak as distance_fee
from sandbox_reconciliation
where pop = :partner and tanggal = :day
order by no
limit :limit offset :offset

-- sandbox_count --
select count(*) from sandbox_reconciliation where pop = :partner and tanggal = :day
