"""Receipt numbers (nob): format and uniqueness over many allocations."""

from __future__ import annotations

import datetime as dt
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdam.core import payments
from pdam.web import runtime

UTC = dt.timezone.utc
PARTNERS = ["00", "01", "96"]
START = dt.datetime(2020, 8, 25, 16, 0, tzinfo=UTC)  # 23:00 WIB: WIB days differ from UTC days


def test_wib_day_decides_the_date(app, add_partner):
    add_partner("00")
    with app.app_context(), runtime.transaction() as conn:
        # 2020-08-25 17:30 UTC is 2020-08-26 00:30 WIB.
        assert payments.allocate_nob(conn, "00", dt.datetime(2020, 8, 25, 17, 30, tzinfo=UTC)) == "002008260001"
        assert payments.allocate_nob(conn, "00", dt.datetime(2020, 8, 25, 16, 59, tzinfo=UTC)) == "002008250001"
        assert payments.allocate_nob(conn, "00", dt.datetime(2020, 8, 26, 16, 59, tzinfo=UTC)) == "002008260002"


def test_rolled_back_allocation_leaves_a_gap_not_a_duplicate(app, add_partner):
    add_partner("00")
    when = START
    with app.app_context():
        conn = runtime.connection()
        assert payments.allocate_nob(conn, "00", when).endswith("0001")
        conn.rollback()
        with runtime.transaction() as conn:
            first = payments.allocate_nob(conn, "00", when)
        with runtime.transaction() as conn:
            second = payments.allocate_nob(conn, "00", when)
    assert first != second and {first[-4:], second[-4:]} == {"0001", "0002"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    allocations=st.lists(
        st.tuples(st.sampled_from(PARTNERS), st.integers(min_value=0, max_value=3 * 24 * 60)),
        min_size=1,
        max_size=60,
    )
)
def test_nobs_are_well_formed_unique_and_sequential(app, add_partner, run_sql, allocations):
    run_sql("delete from nob_counter")
    if not run_sql("select count(*) from partner")[0][0]:
        for code in PARTNERS:
            add_partner(code)
    seen: dict[tuple[str, str], list[int]] = {}
    with app.app_context(), runtime.transaction() as conn:
        for code, minutes in allocations:
            when = START + dt.timedelta(minutes=minutes)
            nob = payments.allocate_nob(conn, code, when)
            assert re.fullmatch(r"[0-9]{12}", nob)
            assert nob[:2] == code
            assert nob[2:8] == (when + dt.timedelta(hours=7)).strftime("%y%m%d")
            seen.setdefault((code, nob[2:8]), []).append(int(nob[8:]))
    for numbers in seen.values():
        assert numbers == list(range(1, len(numbers) + 1))
