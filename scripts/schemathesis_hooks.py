"""Schemathesis hooks for the CLI run of schemathesis.toml (docs/partners.md: API documentation).

The OpenAPI document states every PeTi rule in JSON Schema but one: a period given as an
integer has a month 01-12 in its last two digits (``YYYYMM``); JSON Schema can bound an
integer, not its digits. The string form's pattern says it exactly. This hook keeps the
integers sent to real months (and drops a period the change would repeat), as
tests/peti/test_fuzz.py's ``_repair`` does in-process. Invalid cases are left alone.
"""

import schemathesis

PERIOD_MIN, PERIOD_MAX = 100001, 999912


def _real_month(value):
    if isinstance(value, int) and not isinstance(value, bool) and PERIOD_MIN <= value <= PERIOD_MAX:
        return value - value % 100 + value % 12 + 1
    return value


@schemathesis.hook
def before_call(context, case, kwargs):
    """Every phase (examples, coverage, fuzzing, stateful); Schemathesis revalidates the edit."""
    body = case.body
    per = body.get("per") if isinstance(body, dict) else None
    if not isinstance(per, list) or not per or not all(type(p) is int for p in per):
        return
    if len(set(per)) != len(per):  # already invalid: keep it so
        return
    fixed = []
    for p in map(_real_month, per):
        if p not in fixed:
            fixed.append(p)
    if fixed != per:
        case.body = {**body, "per": fixed}
