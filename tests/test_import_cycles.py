"""No import cycles among the project's modules, function-level imports included.

An import inside a function hides a cycle from the interpreter, not from the design: the
graph here reads every ``import`` statement of every module (with ``ast``), wherever it stands.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("flows", "models", "worldgen", "validation", "registry", "infra")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Project modules ``path`` imports. ``from a import b`` counts only a.b when b is a module:
    importing a submodule runs its package's ``__init__`` first, not the other way round."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                if sub in modules:
                    found.add(sub)
                elif node.module in modules:
                    found.add(node.module)
    return found


def import_graph() -> nx.DiGraph:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    modules = {_module(p): p for p in files}
    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        # a package's __init__ and its modules count too: a module that imports a name from
        # its package's __init__, which imports that module, is the classic circular import
        graph.add_edges_from((name, target) for target in _imports(path, set(modules)) - {name})
    return graph


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_imports_itself_through_others(package: str) -> None:
    """Per package, so a cycle names the package that owns it; each cycle is printed whole."""
    cycles = [
        c
        for c in nx.simple_cycles(import_graph())
        if any(m == package or m.startswith(package + ".") for m in c)
    ]
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join([*c, c[0]]) for c in cycles)


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


def test_worldgen_loads_no_training_or_orchestration_stack() -> None:
    """worldgen must not import torch, MLflow or Prefect (DESIGN.md), not even through another
    library: a fresh interpreter imports every worldgen module and lists what it loaded."""
    names = sorted(_module(p) for p in (ROOT / "worldgen").rglob("*.py"))
    script = "; ".join(
        [f"import {name}" for name in names]
        + ["import sys", "print(sorted({m.split('.')[0] for m in sys.modules}))"]
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    heavy = [m for m in ("torch", "lightning", "mlflow", "prefect") if f"'{m}'" in loaded]
    assert not heavy, f"importing worldgen loads {heavy}"
