"""No import cycles among the project's modules, function-level imports included.

An import inside a function hides a cycle from the interpreter, not from the design: the
graph here reads every ``import`` statement of every module (with ``ast``), wherever it stands.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("flows", "models", "worldgen", "validation", "registry", "infra")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Project modules ``path`` imports (``from a import b`` counts a.b when b is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        else:
            continue
        found |= {n for n in names if n in modules}
    return found


def import_graph() -> nx.DiGraph:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    modules = {_module(p): p for p in files}
    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        for target in _imports(path, set(modules)) - {name}:
            # a package's __init__ re-exporting its own modules is not a cycle of the design
            if not target.startswith(name + ".") and not name.startswith(target + "."):
                graph.add_edge(name, target)
    return graph


def test_no_module_imports_itself_through_others() -> None:
    cycles = list(nx.simple_cycles(import_graph()))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join([*c, c[0]]) for c in cycles)


def test_dependencies_point_one_way() -> None:
    """flows -> registry, models, validation, worldgen -> infra (DESIGN.md)."""
    allowed = {
        "infra": {"infra"},
        "worldgen": {"worldgen", "infra"},
        "validation": {"validation", "worldgen", "infra"},
        "models": {"models", "worldgen", "infra"},
        "registry": {"registry", "infra", "models", "worldgen"},
        "flows": set(PACKAGES),
    }
    wrong = [
        f"{a} -> {b}"
        for a, b in import_graph().edges
        if b.split(".")[0] not in allowed[a.split(".")[0]]
    ]
    assert not wrong, wrong
