"""The import graph: the core never imports the presenters, widgets or CLI, and packages form no cycle.

Every module under ``nexlab/`` is parsed with ``ast`` (nothing is imported), and
every ``import`` counts: at module level, inside a function (a lazy import is
still a dependency) or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import nexlab

ROOT = Path(nexlab.__file__).resolve().parent
CORE_PACKAGES = ("builder", "image", "audit", "diff", "boot", "repro")
OUTER = ("nexlab.report", "nexlab.ui", "nexlab.cli")

#: Neutral modules allowed to reach the presenters, lazily (inside a function) and nowhere else:
#: the one bridge that lets a model render itself in a REPL or Jupyter without the core
#: depending on nexlab.report (issue 11, item 1).
BRIDGES = frozenset({"nexlab.display"})

#: Top-level modules that are the command line itself (``python -m nexlab``), not the core.
ENTRY_POINTS = frozenset({"nexlab.__main__"})

#: Core -> outer-layer imports allowed: none (the models are displayed through the BRIDGES).
KNOWN_EDGES: frozenset[tuple[str, str]] = frozenset()


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _target(name: str) -> str:
    """``name`` as a module of ours: the longest prefix that is a module or package."""
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


def imports(module: str) -> Iterator[tuple[str, bool]]:
    """(imported nexlab module, lazy) for every import statement of ``module``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    lazy_nodes = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        lazy = id(node) in lazy_nodes
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from nexlab.audit import findings` imports the module findings when there is one.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for name in names:
            if name == "nexlab" or name.startswith("nexlab."):
                yield _target(name), lazy


def is_core(module: str) -> bool:
    parts = module.split(".")
    if len(parts) == 2 and (ROOT / f"{parts[1]}.py").exists():
        return module not in BRIDGES | ENTRY_POINTS  # a top-level module: run.py, errors.py, progress.py…
    return len(parts) >= 2 and parts[1] in CORE_PACKAGES


def is_outer(module: str) -> bool:
    return any(module == o or module.startswith(o + ".") for o in OUTER)


def package_of(module: str) -> str:
    """The node of the package graph: a subpackage, or a top-level module on its own."""
    parts = module.split(".")
    return ".".join(parts[:2])


EDGES = {(m, target, lazy) for m in MODULES for target, lazy in imports(m)}


def test_the_graph_is_read() -> None:
    # The parser must see imports of every kind, or the checks below prove nothing.
    assert {"nexlab.builder", "nexlab.audit", "nexlab.report", "nexlab.cli", "nexlab.run"} <= set(MODULES)
    assert ("nexlab.cli.main", "nexlab.cli.commands", False) in EDGES
    assert ("nexlab.audit.findings", "nexlab.audit.inventory", False) in EDGES
    assert any(src == "nexlab.cli.cmd_audit" and lazy for src, _, lazy in EDGES), "lazy imports are seen"
    assert is_core("nexlab.run") and is_core("nexlab.builder.mount") and not is_core("nexlab.report.steps")


def test_core_never_imports_presenters_widgets_or_cli() -> None:
    found = {(src, dst) for src, dst, _ in EDGES if is_core(src) and is_outer(dst)}
    unexpected = sorted(found - KNOWN_EDGES)
    assert not unexpected, f"the core imports an outer layer: {unexpected}"
    gone = sorted(KNOWN_EDGES - found)
    assert not gone, f"remove these from KNOWN_EDGES, they no longer exist: {gone}"


def test_bridges_reach_the_presenters_only_lazily() -> None:
    for src, dst, lazy in EDGES:
        if src in BRIDGES and is_outer(dst):
            assert lazy, f"{src} imports {dst} at module level: a bridge must import it inside a function"
            assert dst.startswith("nexlab.report"), f"{src} may reach nexlab.report only, not {dst}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_package_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for src, dst, _ in EDGES:
        # The facade nexlab/__init__ names everything (lazily); a bridge's lazy edge is the designed
        # inversion.
        if src == "nexlab" or dst == "nexlab" or src in BRIDGES or (src, dst) in KNOWN_EDGES:
            continue
        a, b = package_of(src), package_of(dst)
        if a != b:
            graph.setdefault(a, set()).add(b)
    assert not _cycles(graph), f"package import cycles: {_cycles(graph)}"
