-- Reconciliation (contract section 9): the rows of the reconciliation view
-- (sql/004_operator_views.sql), so partners and operators read the same report.

-- rows --
-- One page of a partner's rows of a WIB day, in the contract's column order
-- (:limit null = every row).
select no, id, nob, nopel, periode, rid, pid, mer, rev,
       air, administrasi, administrasi_angsuran, ppn_administrasi, denda, angsuran,
       materai, registrasi, biaya_pemasangan, ppn_pemasangan, biaya_jarak
from reconciliation
where pop = :partner and tanggal = :day
order by no
limit :limit offset :offset

-- count --
select count(*) from reconciliation where pop = :partner and tanggal = :day

-- sandbox_rows --
-- ``rows`` of the sandbox (sandbox_reconciliation).
select no, id, nob, nopel, periode, rid, pid, mer, rev,
       air, administrasi, administrasi_angsuran, ppn_administrasi, denda, angsuran,
       materai, registrasi, biaya_pemasangan, ppn_pemasangan, biaya_jarak
from sandbox_reconciliation
where pop = :partner and tanggal = :day
order by no
limit :limit offset :offset

-- sandbox_count --
select count(*) from sandbox_reconciliation where pop = :partner and tanggal = :day
