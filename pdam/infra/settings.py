"""Every setting of the service, read from the environment in one place.

The names are part of the product (deployments and scripts rely on them);
docs/operators.md's configuration table lists each one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

VERSION = "0.1.0"
DEFAULT_ISSUER = "pdam-peti"
ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_INSTANCE = ROOT / "instance"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from None


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value <= 0:
        raise RuntimeError(f"{name} must be a positive number of seconds, got {value}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def sqlalchemy_url(url: str) -> str:
    """Turn a libpq/Heroku URL into the SQLAlchemy psycopg 3 form. A URL listing several
    hosts (``postgresql://u@h1:p1,h2:p2/db?target_session_attrs=read-write``: a primary and
    its standby) becomes SQLAlchemy's multi-host form (``...://u@/db?host=h1:p1&host=h2:p2``),
    which psycopg gets back as libpq's host and port lists."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
            break
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    if "," not in hosts:
        return url
    query = [("host", host) for host in hosts.split(",")] + parse_qsl(parts.query, keep_blank_values=True)
    netloc = f"{userinfo}@" if userinfo else ""
    return f"{parts.scheme}://{netloc}{parts.path}?{urlencode(query, safe=':')}"


def libpq_url(url: str) -> str:
    """The plain libpq form of a URL (what psycopg and procrastinate take)."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def _role(env: Mapping[str, str]) -> str | None:
    role = env.get("DATABASE_ROLE", "pdam_app").strip()
    if role and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise RuntimeError(f"DATABASE_ROLE must be a plain role name, got {role!r}")
    return role or None


def instance_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("PDAM_INSTANCE_PATH") or DEFAULT_INSTANCE)


def load(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every setting built from ``env`` (default: os.environ), read once by whoever starts a process."""
    env = os.environ if env is None else env
    instance = instance_path(env)
    keys = instance / "keys"
    algorithm = env.get("JWT_ALGORITHM", "ES256").upper()
    if algorithm not in {"ES256", "RS256"}:
        raise RuntimeError("JWT_ALGORITHM must be ES256 or RS256")
    public_key = env.get("JWT_PUBLIC_KEY") or None
    public_key_file = env.get("JWT_PUBLIC_KEY_FILE") or str(keys / "public.pem")
    return {
        "INSTANCE_PATH": str(instance),
        # Database: None means "start or reuse the embedded server".
        "DATABASE_URL": env.get("DATABASE_URL") or None,
        "BILLING_DATABASE_URL": env.get("BILLING_DATABASE_URL") or None,
        # The schema owner's login, used by `db upgrade` only (default: DATABASE_URL's).
        "DATABASE_OWNER_URL": env.get("DATABASE_OWNER_URL") or None,
        # The role web, worker and commands act as on every connection (sql/roles.sql).
        "DATABASE_ROLE": _role(env),
        "DB_POOL_SIZE": _int(env, "DB_POOL_SIZE", 5),
        "DB_CONNECT_TIMEOUT": _int(env, "DB_CONNECT_TIMEOUT", 3),
        "DB_STATEMENT_TIMEOUT_MS": _int(env, "DB_STATEMENT_TIMEOUT_MS", 10000),
        # Every request answered, every job attempt ended, within this many seconds whatever
        # the database does (pdam/infra/deadline.py): past it, its statements are cancelled.
        "REQUEST_DEADLINE_SECONDS": _positive(env, "REQUEST_DEADLINE_SECONDS", 10),
        # Tokens
        "PDAM_JWT_ALGORITHM": algorithm,
        "PDAM_JWT_PUBLIC_KEY": public_key,
        "PDAM_JWT_PUBLIC_KEY_FILE": public_key_file,
        "JWT_PRIVATE_KEY_FILE": env.get("JWT_PRIVATE_KEY_FILE") or str(keys / "private.pem"),
        "JWT_ISSUER": env.get("JWT_ISSUER") or DEFAULT_ISSUER,
        "TOKEN_DEFAULT_DAYS": _int(env, "TOKEN_DEFAULT_DAYS", 30),
        # Keys that seal secrets at rest, newest first (pdam/infra/sealing.py); else the file
        "SECRET_KEYS": env.get("SECRET_KEYS") or None,
        "SECRET_KEYS_FILE": env.get("SECRET_KEYS_FILE") or str(keys / "secret-keys"),
        # Partner flow
        "INQUIRY_TTL_SECONDS": _int(env, "INQUIRY_TTL_SECONDS", 900),
        "INQUIRY_MESSAGE": env.get("INQUIRY_MESSAGE", "Terima kasih telah membayar tepat waktu"),
        "PAYMENT_MESSAGE": env.get("PAYMENT_MESSAGE", "Bayarlah tagihan tepat waktu untuk menghindari denda"),
        "MAX_CONTENT_LENGTH": _int(env, "MAX_CONTENT_LENGTH", 16 * 1024),
        # SNAP (banks' virtual accounts): X-TIMESTAMP tolerance, access token lifetime
        "SNAP_TIMESTAMP_SKEW_SECONDS": _int(env, "SNAP_TIMESTAMP_SKEW_SECONDS", 300),
        "SNAP_TOKEN_TTL_SECONDS": _int(env, "SNAP_TOKEN_TTL_SECONDS", 900),
        # Operations: requests per second per partner (bursts as large; 0 = off), /metrics
        "PARTNER_RATE_LIMIT": _int(env, "PARTNER_RATE_LIMIT", 50),
        "METRICS_TOKEN": env.get("METRICS_TOKEN") or None,
        # Job server
        "POSTING_RETRY_SECONDS": _int(env, "POSTING_RETRY_SECONDS", 30),
        "POSTING_MAX_ATTEMPTS": _int(env, "POSTING_MAX_ATTEMPTS", 20),
        "STALLED_JOB_SECONDS": _int(env, "STALLED_JOB_SECONDS", 60),
        "STALLED_MAX_RETRIES": _int(env, "STALLED_MAX_RETRIES", 5),
        # Posting's slots (and maintenance's); callbacks have their own (WEBHOOK_CONCURRENCY)
        "WORKER_CONCURRENCY": _int(env, "WORKER_CONCURRENCY", 4),
        # Sandbox (contract 14.1): the "ledger unreachable" customer's retries, rows kept
        "SANDBOX_RETRY_SECONDS": _int(env, "SANDBOX_RETRY_SECONDS", 3),
        "SANDBOX_RETENTION_DAYS": _int(env, "SANDBOX_RETENTION_DAYS", 30),
        # Webhooks
        "WEBHOOK_RETRY_SECONDS": _int(env, "WEBHOOK_RETRY_SECONDS", 10),
        "WEBHOOK_MAX_ATTEMPTS": _int(env, "WEBHOOK_MAX_ATTEMPTS", 50),
        "WEBHOOK_DEADLINE_SECONDS": _int(env, "WEBHOOK_DEADLINE_SECONDS", 86400),
        "WEBHOOK_TIMEOUT_SECONDS": _int(env, "WEBHOOK_TIMEOUT_SECONDS", 5),
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": _flag(env, "WEBHOOK_ALLOW_PRIVATE_NETWORKS"),
        # Callback attempts in flight at once (slots of their own, never posting's)
        "WEBHOOK_CONCURRENCY": _int(env, "WEBHOOK_CONCURRENCY", 8),
        # Web server (read by gunicorn.conf.py too). FORWARDED_ALLOW_IPS: the proxies whose
        # X-Forwarded-For entry is the client's address (allowed addresses, contract 14.3).
        "FORWARDED_ALLOW_IPS": env.get("FORWARDED_ALLOW_IPS") or "127.0.0.1,::1",
        "PORT": _int(env, "PORT", 5000),
        "WEB_CONCURRENCY": _int(env, "WEB_CONCURRENCY", 4),
        # A request not read whole within this time is cut (pdam/web/server.py)
        "WEB_READ_TIMEOUT_SECONDS": _int(env, "WEB_READ_TIMEOUT_SECONDS", 10),
    }
