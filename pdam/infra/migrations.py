"""Applies ``sql/`` migrations in order and installs/upgrades Procrastinate's schema.

Three tracks, in this order: ``sql/ledger/*.sql`` builds the billing ledger (in
``BILLING_DATABASE_URL`` when set), Procrastinate's schema the queue, ``sql/*.sql``
the payments database (which may index the queue's tables). Each
file runs in its own transaction together with its record in
``schema_migration``; an advisory lock serialises concurrent upgrades, so
running it again (or twice at once) changes nothing.

After every track: ``sql/roles.sql`` (roles and privileges, re-applied each time so they
cover every table, whichever migration made it) in each database, then the secrets stored
in plain text are sealed (the first upgrade with ``sql/009_sealed_secrets.sql``) and the
canary is sealed or checked: a wrong key stops the upgrade before it seals anything.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import procrastinate
import psycopg
import sqlalchemy as sa
from procrastinate.schema import SchemaManager

from . import sealing, settings
from .settings import ROOT, sqlalchemy_url

SQL_DIR = ROOT / "sql"
ROLES_FILE = SQL_DIR / "roles.sql"
LOCK_KEY = 4_231_001  # pg_advisory_xact_lock key for migrations

CREATE_TABLE = """
create table if not exists schema_migration (
    track      text not null,
    name       text not null,
    checksum   text not null,
    applied_at timestamptz not null default now(),
    primary key (track, name)
);
comment on table schema_migration is 'Migrations applied by flask db upgrade (sql/ files and the queue schema).';
"""


def migration_files(track: str) -> list[Path]:
    folder = SQL_DIR / "ledger" if track == "ledger" else SQL_DIR
    return sorted(folder.glob("[0-9][0-9][0-9]_*.sql"))


def _applied(conn: psycopg.Connection, track: str) -> dict[str, str]:
    rows = conn.execute("select name, checksum from schema_migration where track = %s", (track,)).fetchall()
    return dict(rows)


def _apply_track(url: str, track: str, files: list[tuple[str, str]]) -> list[str]:
    """Apply ``files`` (name, sql) not yet recorded for ``track``; return the names applied."""
    done = []
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            conn.execute(CREATE_TABLE)
        for name, sql in files:
            checksum = hashlib.sha256(sql.encode()).hexdigest()
            with conn.transaction():
                conn.execute("select pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                applied = _applied(conn, track)
                if name in applied:
                    if applied[name] != checksum:
                        raise RuntimeError(
                            f"migration {track}/{name} changed after it was applied; "
                            "add a new numbered file instead"
                        )
                    continue
                conn.execute(sql)
                conn.execute(
                    "insert into schema_migration (track, name, checksum) values (%s, %s, %s)",
                    (track, name, checksum),
                )
                done.append(f"{track}/{name}")
    return done


def _procrastinate_files(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """The queue's schema: the full schema on a fresh database, else its newer migrations."""
    installed = conn.execute("select to_regclass('procrastinate_jobs') is not null").fetchone()[0]
    version = procrastinate.__version__
    if not installed:
        return [(f"schema-{version}", SchemaManager.get_schema())]
    recorded = [
        name
        for (name,) in conn.execute(
            "select name from schema_migration where track = 'procrastinate'"
        ).fetchall()
    ]
    if f"schema-{version}" in recorded:
        return []
    # Installed by an older release: apply the migrations shipped since then.
    base = max((n.split("-", 1)[1] for n in recorded if n.startswith("schema-")), default=None)
    files = []
    for path in sorted(Path(SchemaManager.get_migrations_path()).glob("*.sql")):
        file_version = tuple(int(p) for p in path.name.split("_", 1)[0].split("."))
        if base is None or file_version > tuple(int(p) for p in base.split(".")[:3]):
            files.append((f"migration-{path.name}", path.read_text()))
    files.append((f"schema-{version}", "select 1"))
    return files


def apply_roles(url: str) -> None:
    """``sql/roles.sql`` on ``url``'s database, in one transaction under the upgrade lock."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute(ROLES_FILE.read_text(encoding="utf-8"))


def upgrade(url: str, ledger_url: str | None = None, *, sealer: sealing.Sealer | None = None) -> list[str]:
    """Bring both databases up to date (schema, roles, sealed secrets); return what was
    applied, and how many stored secrets were sealed. ``sealer``: the keys of the
    environment's ``SECRET_KEYS`` (or its file) unless given; none: ``SealingError``."""
    sealer = sealer or sealing.from_settings(settings.load())
    ledger_url = ledger_url or url
    applied = _apply_track(ledger_url, "ledger", [(p.name, p.read_text()) for p in migration_files("ledger")])
    # The queue's schema before ours: our migrations may index its tables.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(CREATE_TABLE)
        queue_files = _procrastinate_files(conn)
    applied += _apply_track(url, "procrastinate", queue_files)
    applied += _apply_track(url, "main", [(p.name, p.read_text()) for p in migration_files("main")])
    if ledger_url != url:
        apply_roles(ledger_url)
    apply_roles(url)
    # The secrets are sealed through the port (on a SQLAlchemy connection of its own).
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            sealing.ensure_canary(conn, sealer)
            resealed = sealing.reseal(conn, sealer, plaintext_only=True)
            sealing.validate_checks(conn)
    finally:
        engine.dispose()
    applied += [f"sealed {r.values} stored {r.column}" for r in resealed if r.values]
    return applied
