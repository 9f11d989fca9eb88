"""The quality benchmark's target arithmetic (the benchmark itself is a script, not a test)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def quality() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_quality", ROOT / "benchmarks/quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_quality"] = module
    spec.loader.exec_module(module)
    return module


def mode(acc: float, halluc: float, flops: float, multistep: float) -> dict[str, Any]:
    return {
        "factual_accuracy": {"composite": acc},
        "hallucination_rate": halluc,
        "flops_per_token": flops,
        "accuracy_by_kind": {"multistep": multistep},
    }


def test_targets_compare_apr_with_dense_and_all() -> None:
    q = quality()
    got = q.targets(
        {
            "dense": mode(0.90, 0.05, 100.0, 0.80),
            "apr": mode(0.95, 0.02, 110.0, 0.88),
            "all": mode(0.952, 0.02, 200.0, 0.90),
        }
    )
    assert got["apr_accuracy"]["met"] and got["apr_hallucination"]["met"]
    assert got["apr_vs_dense"]["met"] and got["apr_vs_all"]["met"]
    assert got["apr_share_of_all_extra_flops"]["value"] == 0.1
    assert got["all_vs_dense_multistep"]["met"]
    worse = q.targets(
        {
            "dense": mode(0.30, 0.15, 100.0, 0.20),
            "apr": mode(0.31, 0.15, 140.0, 0.20),
            "all": mode(0.40, 0.15, 200.0, 0.22),
        }
    )
    assert not any(t["met"] for t in worse.values())


def test_merge_combines_part_files(tmp_path: Path) -> None:
    q = quality()
    parts = []
    for name, acc in (("dense", 0.3), ("apr", 0.35), ("all", 0.36)):
        part = {
            "modes": {name: mode(acc, 0.1, {"dense": 1.0, "apr": 1.1, "all": 2.0}[name], acc)},
            "wall_s": 10.0 + acc,
            "machine": {"load_avg_end": [1.0, 1.0, 1.0]},
        }
        path = tmp_path / f"part-{name}.json"
        path.write_text(json.dumps(part))
        parts.append(path)
    out = tmp_path / "quality.json"
    q.merge(parts, out)
    payload = json.loads(out.read_text())
    assert set(payload["modes"]) == {"dense", "apr", "all"}
    assert payload["targets"]["apr_vs_dense"]["value"] == 0.05
    assert payload["run_in_parallel"] and payload["wall_s"] == 10.36
