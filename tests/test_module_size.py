"""No module over 450 lines (issue 22): a module that grows past it is split by what it
does."""

from __future__ import annotations

from tests.factories import ROOT

LIMIT = 450
FOLDERS = ("pdam", "jobs", "tests", "scripts", "bench")


def test_no_module_is_over_the_limit():
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for folder in FOLDERS
        for path in sorted((ROOT / folder).rglob("*.py"))
    }
    assert len(sizes) > 50  # the folders are there
    over = {name: lines for name, lines in sizes.items() if lines > LIMIT}
    assert over == {}, f"modules over {LIMIT} lines: {over}"
