"""The billing ledger: importing bills, reading a customer's unpaid bills."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import sqlalchemy as sa

from . import errors
from .db import driver_connection

COLUMNS = (
    "cid nama alamat golongan bill_id periode meter_awal meter_akhir pakai"
    " air administrasi ppn_administrasi denda angsuran"
).split()
AMOUNTS = ("meter_awal", "meter_akhir", "pakai", "air", "administrasi", "ppn_administrasi", "denda", "angsuran")
CID_RE = re.compile(r"^[0-9]{1,20}$")
PERIOD_RE = re.compile(r"^[0-9]{4}(0[1-9]|1[0-2])$")
MAX_REPORTED_ERRORS = 20
MAX_AMOUNT = 10**15


@dataclass
class ImportResult:
    customers: int
    bills: int
    inserted: int
    updated: int


def _row_errors(row: dict) -> list[str]:
    problems = []
    if not CID_RE.match(row["cid"]):
        problems.append("cid must be 1..20 digits")
    if not row["nama"].strip() or len(row["nama"]) > 200:
        problems.append("nama must be 1..200 characters")
    if not 1 <= len(row["bill_id"]) <= 40:
        problems.append("bill_id must be 1..40 characters")
    if not PERIOD_RE.match(row["periode"]):
        problems.append("periode must be YYYYMM")
    for name in AMOUNTS:
        value = row[name]
        if not value.isdigit() or int(value) > MAX_AMOUNT:
            problems.append(f"{name} must be a whole non-negative number")
    return problems


def parse_csv(lines: Iterable[str], progress: Callable[[int], None] = lambda n: None) -> Iterator[tuple]:
    """Validate every line; yield ``(line_no, values...)``. Raises BadRequest naming lines."""
    reader = csv.DictReader(lines)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise errors.BadRequest(f"line 1: missing columns: {', '.join(missing)}")
    problems: list[str] = []
    rows = []
    seen: dict[tuple[str, str], int] = {}
    for row in reader:
        line = reader.line_num
        progress(1)
        if None in row or any(row[c] is None for c in COLUMNS):
            problems.append(f"line {line}: expected {len(COLUMNS)} columns")
            continue
        row = {k: (v or "").strip() for k, v in row.items() if k in COLUMNS}
        bad = _row_errors(row)
        key = (row["cid"], row["periode"])
        if not bad and key in seen:
            bad = [f"bill for cid {key[0]} periode {key[1]} already on line {seen[key]}"]
        seen.setdefault(key, line)
        if bad:
            problems.append(f"line {line}: " + "; ".join(bad))
            if len(problems) >= MAX_REPORTED_ERRORS:
                break
            continue
        rows.append((line, *(row[c] for c in COLUMNS)))
    if problems:
        raise errors.BadRequest("nothing imported:\n" + "\n".join(problems))
    return rows


def import_rows(conn: sa.Connection, rows: list[tuple]) -> ImportResult:
    """Load validated rows in the caller's transaction: all or nothing."""
    raw = driver_connection(conn)
    conn.execute(
        sa.text(
            "create temporary table bill_import ("
            " line int, cid text, nama text, alamat text, golongan text, bill_id text,"
            " periode text, meter_awal bigint, meter_akhir bigint, pakai bigint, air bigint,"
            " administrasi bigint, ppn_administrasi bigint, denda bigint, angsuran bigint"
            ") on commit drop"
        )
    )
    with raw.cursor().copy(
        "copy bill_import (line, " + ", ".join(COLUMNS) + ") from stdin"
    ) as copy:
        for row in rows:
            copy.write_row(row)
    conflicts = conn.execute(
        sa.text(
            "select i.line, i.cid, i.periode, b.paid_by, b.bill_no, b.customer_id, b.period"
            " from bill_import i join bill b"
            "   on (b.customer_id = i.cid and b.period = i.periode) or b.bill_no = i.bill_id"
            " where b.paid_by is not null"
            "    or b.bill_no <> i.bill_id or b.customer_id <> i.cid or b.period <> i.periode"
            " order by i.line limit :n"
        ),
        {"n": MAX_REPORTED_ERRORS},
    ).all()
    if conflicts:
        lines = []
        for c in conflicts:
            if c.paid_by:
                lines.append(
                    f"line {c.line}: bill {c.bill_no} (cid {c.customer_id} periode {c.period})"
                    f" is already paid by {c.paid_by}; paid bills cannot be changed"
                )
            else:
                lines.append(
                    f"line {c.line}: bill_id {c.bill_no} belongs to cid {c.customer_id}"
                    f" periode {c.period}"
                )
        raise errors.Conflict("nothing imported:\n" + "\n".join(lines))
    customers = conn.execute(
        sa.text(
            "insert into customer (id, name, address, tariff)"
            " select distinct on (cid) cid, nama, alamat, golongan from bill_import order by cid, line desc"
            " on conflict (id) do update set name = excluded.name, address = excluded.address,"
            "   tariff = excluded.tariff"
        )
    ).rowcount
    counts = conn.execute(
        sa.text(
            "with up as ("
            " insert into bill (bill_no, customer_id, period, meter_start, meter_end, usage,"
            "   water, admin_fee, admin_vat, late_fee, installment)"
            " select bill_id, cid, periode, meter_awal, meter_akhir, pakai, air, administrasi,"
            "   ppn_administrasi, denda, angsuran from bill_import"
            " on conflict (customer_id, period) do update set"
            "   meter_start = excluded.meter_start, meter_end = excluded.meter_end,"
            "   usage = excluded.usage, water = excluded.water, admin_fee = excluded.admin_fee,"
            "   admin_vat = excluded.admin_vat, late_fee = excluded.late_fee,"
            "   installment = excluded.installment"
            "   where bill.paid_by is null"
            " returning (xmax = 0) as inserted)"
            " select count(*) filter (where inserted) as inserted,"
            "        count(*) filter (where not inserted) as updated from up"
        )
    ).one()
    if counts.inserted + counts.updated != len(rows):
        # A bill was paid between the check and the upsert: refuse the whole file.
        raise errors.Conflict("nothing imported: a bill in the file was paid during the import")
    return ImportResult(customers, len(rows), counts.inserted, counts.updated)
