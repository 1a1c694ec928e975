"""What every command group shares (pdam/cli/common.py): one clear line when the database is down."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "args",
    [
        ["partner", "list"],
        ["partner", "add", "03", "X"],
        ["partner", "deactivate", "03"],
        ["payment", "requeue", "001234567890"],
    ],
)
def test_cli_with_database_down_is_one_line_and_exit_1(make_app, args):
    app = make_app(DATABASE_URL="postgresql://postgres@127.0.0.1:1/nowhere", DB_CONNECT_TIMEOUT=1)
    res = app.test_cli_runner().invoke(args=args)
    assert res.exit_code == 1
    assert res.output.startswith("Error: database unavailable or too slow, the command did not complete: ")
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
