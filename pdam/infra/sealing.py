"""Secrets the service must read back, sealed at rest (authenticated encryption).

A sealed value is ``pdam1.<key id>.<Fernet token>``: Fernet (AES-128-CBC with
HMAC-SHA256, from ``cryptography``) under one of the keys of ``SECRET_KEYS``
(newest first). The key id (the first 8 hex digits of the key's SHA-256) picks
the key that opens a value, and lets SQL find the values not yet under the
newest key (``reseal``). Opening never falls back to plaintext: a value that
is not sealed, sealed under a key ``SECRET_KEYS`` does not hold, or altered,
raises ``SealingError``.

The database holds a canary (``secret_canary``, migration 009): a known text
sealed when the database was first upgraded. Every process checks once, before
it serves, that its keys open it: a wrong or missing key is a start-up error,
never a stream of failed deliveries and signatures.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken

from . import port
from .port import Plan
from .sql import queries

PREFIX = "pdam1"
CANARY = "pdam secret canary"
SEALED_RE = re.compile(r"pdam1\.([0-9a-f]{8})\.([A-Za-z0-9_=-]+)")
BATCH = 500
Q = queries("sealing")

#: Every sealed column by table, read and written (a row's columns together: each must be
#: sealed) by the statements ``<table>_sealed`` and ``set_<table>_sealed`` of
#: sql/queries/sealing.sql. ``sql/roles.sql`` keeps the same columns from the operator role.
SEALED_COLUMNS = {
    "partner": ("webhook_secret",),
    "snap_client": ("client_secret",),
    "payment": ("callback_token", "request_authorization"),
}


class SealingError(RuntimeError):
    """The secrets cannot be sealed or opened with the keys of SECRET_KEYS"""


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()[:8]


def generate_key() -> str:
    """A new key for ``SECRET_KEYS`` (32 random bytes, URL-safe base64)."""
    return Fernet.generate_key().decode("ascii")


def parse_keys(text: str) -> list[str]:
    """The keys of a ``SECRET_KEYS`` value or file: separated by commas, spaces or new
    lines, newest first; ``#`` starts a comment."""
    lines = (line.split("#", 1)[0] for line in text.splitlines())
    return [key for line in lines for key in re.split(r"[\s,]+", line) if key]


#: Opened values a Sealer keeps (``Sealer.open``).
OPENED_KEPT = 1024


class Sealer:
    """Seals under the newest key, opens under any of them."""

    def __init__(self, keys: list[str]):
        if not keys:
            raise SealingError("SECRET_KEYS holds no key")
        self._fernets: dict[str, Fernet] = {}
        for key in keys:
            try:
                fernet = Fernet(key.encode("ascii"))
            except (ValueError, UnicodeEncodeError):
                raise SealingError(
                    "SECRET_KEYS: every key must be 32 bytes in URL-safe base64"
                    " (make one with: flask --app wsgi secrets keygen)"
                ) from None
            self._fernets.setdefault(key_id(key), fernet)
        self.newest = key_id(keys[0])
        self._opened = functools.lru_cache(maxsize=OPENED_KEPT)(self._open)

    @property
    def key_ids(self) -> list[str]:
        return list(self._fernets)

    def seal(self, plaintext: str) -> str:
        token = self._fernets[self.newest].encrypt(plaintext.encode("utf-8"))
        return f"{PREFIX}.{self.newest}.{token.decode('ascii')}"

    def open(self, sealed: str) -> str:
        """The plaintext of a sealed value. Never returns a value that was not sealed. The
        last OPENED_KEPT values opened are kept: a partner's webhook secret is opened once,
        not for every callback (the process holds the keys that open them all anyway)."""
        return self._opened(sealed)

    def _open(self, sealed: str) -> str:
        match = SEALED_RE.fullmatch(sealed or "")
        if match is None:
            raise SealingError("a secret in the database is not sealed (run: flask --app wsgi db upgrade)")
        kid, token = match.groups()
        fernet = self._fernets.get(kid)
        if fernet is None:
            raise SealingError(
                f"a secret is sealed under key id {kid}, which SECRET_KEYS does not hold"
                f" (it holds {', '.join(self.key_ids)})"
            )
        try:
            return fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SealingError(
                f"a secret sealed under key id {kid} does not open: the key differs or the value was altered"
            ) from None

    def open_optional(self, sealed: str | None) -> str | None:
        return None if sealed is None else self.open(sealed)

    def seal_optional(self, plaintext: str | None) -> str | None:
        return None if plaintext is None else self.seal(plaintext)

    def __repr__(self) -> str:  # never the keys
        return f"Sealer(newest={self.newest}, keys={self.key_ids})"


def from_settings(settings: Mapping) -> Sealer:
    """The sealer of ``SECRET_KEYS``, else of the keys in ``SECRET_KEYS_FILE`` (``make run``
    writes a development one); neither: ``SealingError``."""
    text = settings.get("SECRET_KEYS")
    if not text:
        path = Path(settings.get("SECRET_KEYS_FILE") or "")
        if not path.is_file():
            raise SealingError(
                f"no SECRET_KEYS and no key file at {path} (SECRET_KEYS_FILE): the service cannot"
                " open its secrets (make one with: flask --app wsgi secrets keygen)"
            )
        text = path.read_text(encoding="ascii")
    return Sealer(parse_keys(text))


# -- the database (through the port, on a SQLAlchemy connection; the callers commit) --------


@port.plan
def _canary(db: port.Db) -> Plan[str | None]:
    """The sealed canary; None when there is none, or no table for it yet (a statement of
    its own: a missing table aborts no transaction)."""
    try:
        return (yield port.scalar(Q["canary"], alone=True))
    except port.Permanent as exc:
        if isinstance(exc.__cause__, psycopg.errors.UndefinedTable):
            return None
        raise


@port.plan
def _fetch(db: port.Db, name: str, params: Mapping | None = None) -> Plan[list]:
    return (yield port.fetch(Q[name], params))


@port.plan
def _count(db: port.Db, name: str, params: Mapping | None = None) -> Plan[int]:
    return (yield port.count(Q[name], params))


def verify(conn: sa.Connection, sealer: Sealer) -> None:
    """Check that ``sealer`` opens the database's canary (``SealingError`` if not)."""
    sealed = _canary(conn)
    if sealed is None:
        raise SealingError("the database has no secret canary yet: run flask --app wsgi db upgrade")
    try:
        opened = sealer.open(sealed)
    except SealingError as exc:
        raise SealingError(f"SECRET_KEYS cannot open this database's secrets: {exc}") from None
    if opened != CANARY:
        raise SealingError("SECRET_KEYS cannot open this database's secrets: the canary is not ours")


def ensure_canary(conn: sa.Connection, sealer: Sealer) -> None:
    """Seal the canary when the database has none (first upgrade), else verify it."""
    _count(conn, "add_canary", {"sealed": sealer.seal(CANARY)})
    conn.commit()
    verify(conn, sealer)


@dataclass
class Resealed:
    column: str
    values: int


def reseal(conn: sa.Connection, sealer: Sealer, *, plaintext_only: bool) -> list[Resealed]:
    """Seal every value under the newest key, in committed batches, and the canary last.

    ``plaintext_only``: only values stored before sealing existed (``db upgrade``); else
    also every value under an older key (``secrets rotate``: old keys still open, so the
    service keeps running). Each update is guarded by the value it read: one changed
    meanwhile (a rotated secret) is left as it is, already under the newest key.
    """
    keep = f"{PREFIX}.%" if plaintext_only else f"{PREFIX}.{sealer.newest}.%"
    done = []
    for table, columns in SEALED_COLUMNS.items():
        counts, after = [0] * len(columns), None
        while True:
            rows = _fetch(conn, f"{table}_sealed", {"keep": keep, "after": after, "batch": BATCH})
            for row_key, *values in rows:
                params = {"key": row_key}
                for n, value in enumerate(values):
                    plain = (
                        value if value is None or SEALED_RE.fullmatch(value) is None else sealer.open(value)
                    )
                    params[f"old{n}"], params[f"new{n}"] = value, sealer.seal_optional(plain)
                if _count(conn, f"set_{table}_sealed", params):
                    counts = [c + (v is not None) for c, v in zip(counts, values, strict=True)]
            conn.commit()
            if len(rows) < BATCH:
                break
            after = rows[-1][0]
        done += [Resealed(f"{table}.{column}", n) for column, n in zip(columns, counts, strict=True)]
    if not plaintext_only:
        verify(conn, sealer)
        _count(conn, "set_canary", {"sealed": sealer.seal(CANARY)})
        conn.commit()
    return done


VALIDATE = (
    "validate_partner",
    "validate_snap_client",
    "validate_payment_callback_token",
    "validate_payment_request_authorization",
)


def validate_checks(conn: sa.Connection) -> None:
    """Validate migration 009's "sealed" checks (by the owner, after ``reseal`` of the
    plain values): from then on no row, old or new, holds a plain secret."""
    for name in VALIDATE:
        _count(conn, name)
    conn.commit()


def count_by_key(conn: sa.Connection) -> dict[str, dict[str, int]]:
    """``{column: {key id or "plaintext": values}}`` of every sealed column, and the canary's."""
    out: dict[str, dict[str, int]] = {}
    for kid_column, kid, n in _fetch(conn, "count_by_key"):
        out.setdefault(kid_column, {})[kid] = n
    return out
