"""The package boundaries, checked from the source: agent/ stays free of the front ends, and no
module imports one that imports it back (lazy and TYPE_CHECKING imports count: a cycle hidden
in a function is still a cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "bot", "storage", "budo", "scenarios")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for file in (ROOT / package).rglob("*.py"):
            name = ".".join(file.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = file
    return found


def imports(file: Path, known: dict[str, Path]) -> set[str]:
    """Every module of ours that ``file`` imports, anywhere in it."""

    def ours(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    found: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(m for a in node.names if (m := ours(a.name)))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                target = full if full in known else ours(node.module)
                if target:
                    found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(file, known) - {name} for name, file in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_agent_imports_no_front_end_and_of_budo_only_its_errors() -> None:
    outside = {
        f"{name} imports {target}"
        for name, targets in graph().items() if name.split(".")[0] == "agent"
        for target in targets
        if target.split(".")[0] in ("bot", "storage", "scenarios")
        or (target.split(".")[0] == "budo" and target not in ("budo", "budo.errors"))
    }
    assert not outside, sorted(outside)


def test_no_module_imports_one_that_imports_it_back() -> None:
    assert cycles(graph()) == []


def test_the_checker_sees_imports_hidden_in_functions_and_cycles(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from agent.loop import Stop\n"
                      "def f():\n    from storage import store\n    import bot.runs\n")
    assert imports(module, modules()) == {"agent.loop", "storage.store", "bot.runs"}
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
