"""No import circle among the scripts (scripts/, bench/): import-linter checks ``pdam`` and
``jobs``; the scripts import their neighbours by file name (``from failover_figures import
...``), type-only imports included, which this reads from their source."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("scripts", "bench")


def neighbours(path: Path, names: set[str]) -> set[str]:
    """The modules of ``names`` that ``path`` imports (by bare name or as ``bench.<name>``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules = [node.module]
        else:
            continue
        for module in modules:
            last = module.split(".")[-1] if module.startswith(f"{path.parent.name}.") else module
            if last in names and last != path.stem:
                found.add(last)
    return found


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (its modules in order), or None."""
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return trail[trail.index(nxt) :] + [nxt] if nxt in trail else [node, nxt]
            if nxt not in state and (found := visit(nxt, [*trail, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_no_import_circle_among_the_scripts():
    for folder in FOLDERS:
        files = {p.stem: p for p in (ROOT / folder).glob("*.py")}
        graph = {name: neighbours(path, set(files)) for name, path in files.items()}
        assert cycle(graph) is None, f"{folder}/: {' -> '.join(cycle(graph) or [])}"


def test_the_check_finds_a_circle():
    assert cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None
