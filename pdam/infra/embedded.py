"""The embedded PostgreSQL server used when ``DATABASE_URL`` is not set.

pgserver ships real PostgreSQL binaries in a wheel, so a machine with only
Python gets a real server (never SQLite). The server keeps running after the
process that started it exits; the next process reuses it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import warnings
from pathlib import Path

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

DATABASE_NAME = "pdam"


def start(data_dir: Path, database: str = DATABASE_NAME, keep_running: bool = True) -> str:
    """Start (or reuse) the server in ``data_dir``; return a libpq URL to ``database``."""
    data_dir = Path(data_dir).resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # pgserver keeps its lock file in the runtime dir; give it a private one.
    runtime = data_dir.parent / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    # Imported here, not at the top: pgserver fixes its lock folder from XDG_RUNTIME_DIR
    # when its module is first imported, so the variable must be set first.
    import pgserver

    # One process at a time makes (or finds) the server and its database: two processes that
    # start on a new data_dir at once (a test run on several processes, make run beside make
    # test) would otherwise both run initdb in it.
    with open(data_dir.parent / f".{data_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pgserver.get_server(data_dir, cleanup_mode=None if keep_running else "stop")
        admin_url = server.get_uri()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (database,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
    url = server.get_uri(database)
    log.info("embedded PostgreSQL at %s", url)
    return url
