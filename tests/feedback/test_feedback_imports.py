"""The modules of ``feedbackgym.feedback`` import one another in one direction only."""

from __future__ import annotations

import ast
from pathlib import Path

import feedbackgym.feedback

PACKAGE = "feedbackgym.feedback"
ROOT = Path(feedbackgym.feedback.__file__).parent


def _module_name(path: Path) -> str:
    return PACKAGE if path.stem == "__init__" else f"{PACKAGE}.{path.stem}"


def _imported(node: ast.AST, modules: set[str]) -> set[str]:
    """The package's modules one import statement names (a ``from X import name`` names
    module ``X.name`` when that is a module, else ``X``)."""
    found: set[str] = set()
    if isinstance(node, ast.Import):
        found.update(alias.name for alias in node.names if alias.name in modules)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: resolved against the package (every module is a sibling)
            parts = PACKAGE.split(".")[: len(PACKAGE.split(".")) - node.level + 1]
            base = ".".join([*parts, base] if base else parts)
        for alias in node.names:
            if f"{base}.{alias.name}" in modules:
                found.add(f"{base}.{alias.name}")
            elif base in modules:
                found.add(base)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere: at the top, inside functions,
    under ``if TYPE_CHECKING``. Every import statement counts, so a cycle cannot hide in a
    function body."""
    paths = sorted(ROOT.glob("*.py"))
    modules = {_module_name(p) for p in paths}
    graph = {}
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        me = _module_name(path)
        edges: set[str] = set()
        for node in ast.walk(tree):
            edges |= _imported(node, modules)
        graph[me] = edges - {me}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_import_graph_reads_every_kind_of_import() -> None:
    modules = {f"{PACKAGE}.base", f"{PACKAGE}.log", PACKAGE}
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from feedbackgym.feedback.log import FeedbackLog\n"
        "def f():\n    from . import base\n    import feedbackgym.feedback\n"
    )
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        found |= _imported(node, modules)
    assert found == modules


def test_feedback_modules_import_one_way() -> None:
    graph = import_graph()
    assert f"{PACKAGE}.base" in graph and f"{PACKAGE}.log" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle in feedbackgym.feedback: " + " -> ".join(
        name.rsplit(".", 1)[-1] for name in cycle
    )


def test_base_is_the_bottom_layer() -> None:
    # Everything builds on base; base builds on nothing in the package.
    assert import_graph()[f"{PACKAGE}.base"] == set()
