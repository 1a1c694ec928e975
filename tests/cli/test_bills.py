"""``bills import`` (pdam/cli/bills.py): the file checked whole, then one transaction; the
parser and the ledger check were reworked for 200,000-bill files."""

from __future__ import annotations

import io

import pytest

from pdam.core import billing, errors
from pdam.web import runtime
from tests.factories import CONTRACT_BILL, CSV_HEADER

GOOD = (
    CSV_HEADER
    + CONTRACT_BILL
    + (
        "010101010101,Semar Badranaya,Jl. Perjuangan No. 102,10R - Rumah Tangga 10,1234202006,202006,501,515,14,70000,8000,800,0,0\n"
        '0101020304,Petruk,"Gg. Kenanga, No. 3",20N - Niaga Kecil,0304202007,202007,77,99,22,110000,8000,800,0,0\n'
    )
)


def import_file(app, tmp_path, text: str | bytes):
    path = tmp_path / "bills.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return app.test_cli_runner().invoke(args=["bills", "import", str(path)])


def bills(run_sql):
    return run_sql("select customer_id, period, water, late_fee, total, paid_by from bill order by 1, 2")


def test_import_good_file(app, tmp_path, run_sql):
    res = import_file(app, tmp_path, GOOD)
    assert res.exit_code == 0, res.output
    assert "imported 3 bills of 2 customers (3 new, 0 updated)" in res.output
    assert bills(run_sql) == [
        ("010101010101", "202005", 50000, 30000, 88800, None),
        ("010101010101", "202006", 70000, 0, 78800, None),
        ("0101020304", "202007", 110000, 0, 118800, None),
    ]
    assert run_sql("select address from customer where id = '0101020304'") == [("Gg. Kenanga, No. 3",)]


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("01x1,A,,,b9,202001,0,0,0,1,0,0,0,0", "line 5: cid must be 1..20 digits"),
        ("0101,A,,,b9,202013,0,0,0,1,0,0,0,0", "line 5: periode must be YYYYMM"),
        ("0101,A,,,b9,202001,0,0,0,-5,0,0,0,0", "line 5: air must be a whole non-negative number"),
        ("0101,A,,,b9,202001,0,0,0,1.5,0,0,0,0", "line 5: air must be a whole non-negative number"),
        ("0101,A,,,b9,202001,0,0,0", "line 5: expected 14 columns"),
        (
            "010101010101,A,,,b9,202005,0,0,0,1,0,0,0,0",
            "line 5: bill for cid 010101010101 periode 202005 already on line 2",
        ),
    ],
)
def test_bad_line_imports_nothing(app, tmp_path, run_sql, bad_line, message):
    res = import_file(app, tmp_path, GOOD + bad_line + "\n")
    assert res.exit_code == 1
    assert message in res.output
    assert "nothing imported" in res.output
    assert bills(run_sql) == []


def test_missing_column(app, tmp_path):
    res = import_file(app, tmp_path, "cid,nama\n1,A\n")
    assert res.exit_code == 1
    assert "line 1: missing columns: alamat" in res.output


def test_reimport_updates_unpaid_bills(app, tmp_path, run_sql):
    assert import_file(app, tmp_path, GOOD).exit_code == 0
    changed = GOOD.replace(",30000,0\n", ",45000,0\n")
    res = import_file(app, tmp_path, changed)
    assert res.exit_code == 0, res.output
    assert "(0 new, 3 updated)" in res.output
    assert bills(run_sql)[0][3:5] == (45000, 103800)


def test_reimport_refuses_to_touch_a_paid_bill(app, tmp_path, run_sql):
    assert import_file(app, tmp_path, GOOD).exit_code == 0
    run_sql("update bill set paid_by = '002011230001', paid_at = now() where period = '202005'")
    changed = GOOD.replace(",30000,0\n", ",45000,0\n").replace("110000", "120000")
    res = import_file(app, tmp_path, changed)
    assert res.exit_code == 1
    assert "line 2: bill 1234202005" in res.output and "already paid by 002011230001" in res.output
    after = bills(run_sql)
    assert after[0][3] == 30000 and after[2][2] == 110000  # nothing imported, not even the unpaid bill


def test_bill_id_of_another_bill_is_refused(app, tmp_path, run_sql):
    assert import_file(app, tmp_path, GOOD).exit_code == 0
    res = import_file(app, tmp_path, CSV_HEADER + "0101,A,,,1234202005,202001,0,0,0,1,0,0,0,0\n")
    assert res.exit_code == 1
    assert "line 2: bill_id 1234202005 belongs to cid 010101010101" in res.output


@pytest.mark.parametrize("amount", ["²", "٣", "1" * 17, "1000000000000001"])
def test_import_refuses_digits_python_alone_would_take(app, tmp_path, run_sql, amount):
    res = import_file(app, tmp_path, CSV_HEADER + f"0101,A,,,b1,202001,0,0,0,{amount},0,0,0,0\n")
    assert res.exit_code == 1 and "line 2: air must be a whole non-negative number" in res.output
    assert run_sql("select count(*) from bill") == [(0,)]


def test_import_takes_the_largest_amount(app, tmp_path, run_sql):
    res = import_file(app, tmp_path, CSV_HEADER + "0101,A,,,b1,202001,0,0,0,1000000000000000,0,0,0,0\n")
    assert res.exit_code == 0, res.output
    assert run_sql("select water from bill") == [(10**15,)]


def test_import_of_a_file_that_is_not_utf8(app, tmp_path, run_sql):
    good = (CSV_HEADER + "0101,A,,,b1,202001,0,0,0,1,0,0,0,0\n").encode()
    res = import_file(app, tmp_path, good + "0102,Bébé,,,b2,202001,0,0,0,1,0,0,0,0\n".encode("latin-1"))
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "Error: line 3: not UTF-8 text (invalid continuation byte); nothing imported" in res.output
    assert run_sql("select count(*) from bill") == [(0,)]
    with pytest.raises(errors.Invalid, match="^not UTF-8 text"):  # the parser alone, given bad text
        many = "".join(f"0101{n:06d},P,,,b{n},202001,0,0,0,1,0,0,0,0\n" for n in range(3000)).encode()
        billing.parse_csv(
            io.TextIOWrapper(io.BytesIO(CSV_HEADER.encode() + many + b"\xe9\n"), encoding="utf-8")
        )


def test_import_of_a_broken_csv_field(app, tmp_path, run_sql):
    res = import_file(
        app, tmp_path, CSV_HEADER + '0101,"' + "x" * 200_000 + '",,,b1,202001,0,0,0,1,0,0,0,0\n'
    )
    assert res.exit_code == 1 and "line 2: field larger than field limit" in res.output
    assert run_sql("select count(*) from customer") == [(0,)]


def test_import_refuses_a_second_bill_id_for_an_existing_bill(app, tmp_path, run_sql):
    assert import_file(app, tmp_path, CSV_HEADER + "0101,A,,,b1,202001,0,0,0,1,0,0,0,0\n").exit_code == 0
    res = import_file(
        app, tmp_path, CSV_HEADER + "0102,B,,,b2,202001,0,0,0,1,0,0,0,0\n0101,A,,,b9,202001,0,0,0,5,0,0,0,0\n"
    )
    assert res.exit_code == 1 and "line 3: bill_id b1 belongs to cid 0101 periode 202001" in res.output
    assert run_sql("select customer_id, bill_no, water from bill") == [("0101", "b1", 1)]


def test_import_reports_progress_and_stages(app, tmp_path, run_sql):
    lines = "".join(f"0101{n:06d},P{n},,,b{n},202001,0,0,0,1,0,0,0,0\n" for n in range(2500))
    res = import_file(app, tmp_path, CSV_HEADER + "\n" + lines)  # a blank line is skipped
    assert res.exit_code == 0, res.output
    assert "checking" in res.output and "sending" in res.output
    assert "applying 2500 bills to the ledger (one transaction) ..." in res.output
    assert "imported 2500 bills of 2500 customers (2500 new, 0 updated)" in res.output
    seen = []
    rows = billing.parse_csv((CSV_HEADER + lines).splitlines(keepends=True), progress=seen.append)
    assert len(rows) == 2500 and sum(seen) == 2500 and max(seen) == billing.PROGRESS_EVERY
    assert rows[0][0] == 2 and rows[-1][0] == 2501  # line numbers of the file


def test_import_is_not_cut_by_the_request_statement_timeout(make_app, tmp_path, run_sql):
    run_sql(
        "create function slow_import() returns trigger language plpgsql as $$"
        " begin perform pg_sleep(0.4); return null; end $$;"
        " create trigger slow_import after insert on bill for each statement execute function slow_import()"
    )
    app = make_app(DB_STATEMENT_TIMEOUT_MS=150)
    res = import_file(app, tmp_path, CSV_HEADER + "0101,A,,,b1,202001,0,0,0,1,0,0,0,0\n")
    assert res.exit_code == 0, res.output
    assert run_sql("select bill_no from bill") == [("b1",)]
    # The timeout still holds for everything else on the same connection afterwards.
    with app.app_context(), pytest.raises(Exception, match="statement timeout"):
        runtime.connection().exec_driver_sql("select pg_sleep(0.4)")
