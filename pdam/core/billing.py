"""The billing ledger: importing bills, reading a customer's unpaid bills."""

from __future__ import annotations

import csv
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..infra import port
from ..infra.port import Plan
from ..infra.sql import queries
from . import errors, ids

Q = queries("billing")

COLUMNS = (
    "cid nama alamat golongan bill_id periode meter_awal meter_akhir pakai"
    " air administrasi ppn_administrasi denda angsuran"
).split()
AMOUNTS = (
    "meter_awal",
    "meter_akhir",
    "pakai",
    "air",
    "administrasi",
    "ppn_administrasi",
    "denda",
    "angsuran",
)
#: Cells lose surrounding spaces and tabs; any other character (a newline in a quoted
#: cell) stays and is judged by the field's rule.
BLANKS = " \t"
MAX_REPORTED_ERRORS = 20
MAX_AMOUNT = 10**15


@dataclass
class ImportResult:
    customers: int
    bills: int
    inserted: int
    updated: int


def _is_amount(value: str) -> bool:
    """ASCII digits (``str.isdigit`` alone takes "²" or Arabic-Indic digits) up to MAX_AMOUNT."""
    return value.isascii() and value.isdigit() and (len(value) < 16 or int(value) <= MAX_AMOUNT)


def _row_errors(row: dict) -> list[str]:
    problems = []
    if not ids.matches(ids.CID, row["cid"]):
        problems.append("cid must be 1..20 digits")
    if not row["nama"].strip() or len(row["nama"]) > 200:
        problems.append("nama must be 1..200 characters")
    if not 1 <= len(row["bill_id"]) <= 40:
        problems.append("bill_id must be 1..40 characters")
    if not ids.matches(ids.PERIOD, row["periode"]):
        problems.append("periode must be YYYYMM")
    for name in AMOUNTS:
        if not _is_amount(row[name]):
            problems.append(f"{name} must be a whole non-negative number")
    return problems


#: Progress is reported every this many lines (a progress bar redraw per line costs more than the line).
PROGRESS_EVERY = 1000


def count_lines(binary_lines: Iterable[bytes]) -> int:
    """Lines after the header, checking that each one is UTF-8 (Invalid naming the first
    that is not, before anything is parsed)."""
    count = 0
    for count, line in enumerate(binary_lines, 1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise errors.Invalid(f"line {count}: not UTF-8 text ({exc.reason}); nothing imported") from None
    return max(count - 1, 0)


def parse_csv(lines: Iterable[str], progress: Callable[[int], None] = lambda n: None) -> list[tuple]:
    """Validate every line; return ``(line_no, values...)`` tuples. Raises Invalid naming lines.

    The common case (a valid line) takes one pass of cheap string checks; only a
    line that fails them is examined again to name every problem.
    """
    reader = csv.reader(lines)
    try:
        return _parse(reader, progress)
    except UnicodeDecodeError as exc:  # decoding runs ahead of the parser: no line number
        raise errors.Invalid(f"not UTF-8 text ({exc.reason}); nothing imported") from None
    except csv.Error as exc:
        raise errors.Invalid(f"line {reader.line_num}: {exc}; nothing imported") from None


def _parse(reader, progress: Callable[[int], None]) -> list[tuple]:
    header = next(reader, None) or []
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise errors.Invalid(f"line 1: missing columns: {', '.join(missing)}")
    width = len(header)
    index = [header.index(c) for c in COLUMNS]
    needed = max(index) + 1
    pick = operator.itemgetter(*index)
    problems: list[str] = []
    rows = []
    seen: dict[tuple[str, str], int] = {}
    pending = 0
    for raw in reader:
        pending += 1
        if pending == PROGRESS_EVERY:
            progress(pending)
            pending = 0
        if not raw:  # a blank line, as csv.DictReader skips it
            continue
        line = reader.line_num
        if len(raw) > width or len(raw) < needed:
            problems.append(f"line {line}: expected {len(COLUMNS)} columns")
            if len(problems) >= MAX_REPORTED_ERRORS:
                break
            continue
        values = [value.strip(BLANKS) for value in pick(raw)]
        cid, nama, bill_id, periode = values[0], values[1], values[4], values[5]
        amounts = values[6:]
        digits = "".join(amounts)
        ok = (
            ids.CID.fullmatch(cid) is not None
            and 0 < len(nama) <= 200
            and 0 < len(bill_id) <= 40
            and ids.PERIOD.fullmatch(periode) is not None
            and digits.isascii()
            and digits.isdigit()
            and all(amounts)  # none empty
            and max(map(len, amounts)) < 16  # below MAX_AMOUNT; longer ones take the full check
        )
        bad = [] if ok else _row_errors(dict(zip(COLUMNS, values, strict=False)))
        key = (cid, periode)
        if not bad:
            first = seen.setdefault(key, line)
            if first != line:
                bad = [f"bill for cid {cid} periode {periode} already on line {first}"]
        if bad:
            problems.append(f"line {line}: " + "; ".join(bad))
            if len(problems) >= MAX_REPORTED_ERRORS:
                break
            continue
        rows.append((line, *values))
    progress(pending)
    if problems:
        raise errors.Invalid("nothing imported:\n" + "\n".join(problems))
    return rows


@port.plan
def import_rows(db: port.Db, rows: list[tuple]) -> Plan[ImportResult]:
    """Load validated rows in the caller's transaction: all or nothing."""
    yield from stage_rows.plan(db, rows)
    return (yield from apply_staged.plan(db, len(rows)))


@port.plan
def stage_rows(
    db: port.Db, rows: list[tuple], progress: Callable[[int], None] = lambda n: None
) -> Plan[None]:
    """COPY validated rows into a temporary table of the caller's transaction (dropped at its
    end); ``progress(n)`` is told every PROGRESS_EVERY rows sent."""
    yield port.count(Q["no_statement_timeout"])
    yield port.count(Q["create_staging"])
    yield port.copy(Q["copy_staging"], rows, progress, PROGRESS_EVERY)


@port.plan
def apply_staged(db: port.Db, count: int) -> Plan[ImportResult]:
    """Check the staged rows against the ledger and apply them, or refuse them all."""
    # A bill of the file that exists paid, or whose bill_id or (cid, periode) belongs to
    # another bill. Two equi-joins (hash joins) rather than one join on "a or b", which
    # PostgreSQL can only run as a nested loop of index probes, one per imported row.
    conflicts = yield port.fetch(Q["conflicts"], {"n": MAX_REPORTED_ERRORS})
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
                    f"line {c.line}: bill_id {c.bill_no} belongs to cid {c.customer_id} periode {c.period}"
                )
        raise errors.Conflict("nothing imported:\n" + "\n".join(lines))
    customers = yield port.count(Q["upsert_customers"])
    counts = yield port.one(Q["upsert_bills"])
    if counts.inserted + counts.updated != count:
        # A bill was paid between the check and the upsert: refuse the whole file.
        raise errors.Conflict("nothing imported: a bill in the file was paid during the import")
    return ImportResult(customers, count, counts.inserted, counts.updated)
