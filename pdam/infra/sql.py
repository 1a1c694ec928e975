"""Named SQL statements, kept in ``sql/queries/*.sql`` and loaded once.

The file format is procrastinate's ``queries.sql``: each statement follows a
line ``-- <name> --`` (comment lines right after it document the statement)
and ends where the next one starts. Parameters are SQLAlchemy's ``:name``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from types import MappingProxyType

import sqlalchemy as sa

from .settings import ROOT

QUERIES_DIR = ROOT / "sql" / "queries"
NAME_RE = re.compile(r"(?:\n|^)-- ([a-z0-9_]+) --\n(?:--.*\n)*", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    """``{name: statement}`` of one file's text."""
    parts = NAME_RE.split(text)
    names, bodies = parts[1::2], parts[2::2]
    statements = {}
    for name, body in zip(names, bodies, strict=False):
        if name in statements:
            raise ValueError(f"statement {name!r} is defined twice")
        statements[name] = body.strip().rstrip(";")
    return statements


@functools.cache
def queries(name: str) -> Mapping[str, sa.TextClause]:
    """The statements of ``sql/queries/<name>.sql`` as SQLAlchemy text clauses."""
    text = (QUERIES_DIR / f"{name}.sql").read_text(encoding="utf-8")
    return MappingProxyType({key: sa.text(sql) for key, sql in parse(text).items()})
