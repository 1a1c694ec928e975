"""The named statements (sql/queries): explicit column lists, so a look-up never fetches a
column nobody asked for (the sealed secrets among them) and records are built by name."""

from __future__ import annotations

import re

import pytest

from pdam.infra.sql import QUERIES_DIR, parse

STATEMENTS = [
    (path.stem, name, text)
    for path in sorted(QUERIES_DIR.glob("*.sql"))
    for name, text in parse(path.read_text(encoding="utf-8")).items()
]
STAR = re.compile(r"select\s+\*|\w\.\*|returning\s+\*", re.IGNORECASE)


def test_there_are_statements():
    assert len(STATEMENTS) > 50


@pytest.mark.parametrize(("file", "name", "text"), STATEMENTS, ids=[f"{f}.{n}" for f, n, _ in STATEMENTS])
def test_no_statement_selects_or_returns_star(file, name, text):
    code = "\n".join(line.split("--")[0] for line in text.splitlines())
    assert not STAR.search(code), f"{file}.sql {name}: {STAR.search(code).group(0)}"


def test_the_star_pattern_finds_each_form():
    for text in ("select * from payment", "select p.*, 1 from payment p", "update x set a = 1 returning *"):
        assert STAR.search(text)
    assert not STAR.search("select count(*) from payment")
