"""The app factory wires things and starts nothing: no database, no logging set-up."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from tests.factories import ROOT


def test_token_keygen_boots_no_database(tmp_path):
    """``token keygen`` (a real process, DATABASE_URL unset) writes keys and never starts the
    embedded PostgreSQL: no data directory appears in the instance folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BILLING_DATABASE_URL")}
    env["PDAM_INSTANCE_PATH"] = str(tmp_path / "instance")
    res = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "token", "keygen", str(tmp_path / "keys")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "keys" / "private.pem").exists() and (tmp_path / "keys" / "public.pem").exists()
    assert not (tmp_path / "instance" / "pgdata").exists()


def test_create_app_touches_neither_database_nor_logging(keys):
    from pdam import create_app

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    app = create_app(
        {
            "PDAM_JWT_PUBLIC_KEY": keys["ES256"]["public"],
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        }
    )
    assert app.extensions["pdam.runtime"]._database is None  # built on first use only
    assert root.handlers == handlers and root.level == level


def test_importing_the_core_loads_no_web_framework():
    """The job server imports the core; the package does not drag Flask (or the edges) in."""
    code = (
        "import sys, pdam, pdam.core.payments, pdam.core.posting, pdam.core.webhooks, pdam.core.reversal;"
        "print(sorted(m for m in ('flask', 'werkzeug', 'marshmallow', 'pdam.peti', 'pdam.snap')"
        " if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
