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


def test_held_out_phrasing_has_its_own_targets() -> None:
    q = quality()
    modes = {
        "dense": mode(0.90, 0.05, 100.0, 0.80),
        "apr": mode(0.975, 0.02, 110.0, 0.88),
        "all": mode(0.952, 0.02, 200.0, 0.90),
    }
    assert "apr_heldout_accuracy" not in q.targets(modes)  # a run from before issue 29
    modes["apr"]["heldout_phrasing"] = {
        "accuracy": 0.80,
        "hallucination_rate": 0.01,
        "confident_hallucination": 0.004,
    }
    got = q.targets(modes)
    assert not got["apr_heldout_accuracy"]["met"] and got["apr_heldout_accuracy"]["value"] == 0.8
    assert got["apr_heldout_hallucination"]["met"]
    assert got["apr_heldout_confident_hallucination"]["met"]
    assert got["apr_infamily_accuracy"]["met"] and got["apr_accuracy"]["met"]


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


def test_summary_reads_each_target_over_runs(tmp_path: Path) -> None:
    q = quality()
    runs = []
    for seed, gap in enumerate((0.01, 0.04, -0.02)):
        modes = {
            "dense": mode(0.90, 0.02, 100.0, 0.80),
            "apr": mode(0.90 + gap, 0.02, 110.0, 0.80),
            "all": mode(0.91, 0.02, 200.0, 0.80 + gap * 2),
        }
        path = tmp_path / f"quality-seed{seed}.json"
        path.write_text(json.dumps({"modes": modes, "training": {"seed": seed}}))
        runs.append(path)
    out = tmp_path / "summary.json"
    q.summarize(runs, out)
    got = json.loads(out.read_text())
    vs_dense = got["targets"]["apr_vs_dense"]
    assert got["n_runs"] == 3 and [r["seed"] for r in got["runs"]] == [0, 1, 2]
    assert vs_dense["runs_met"] == 1 and vs_dense["min"] == -0.02 and vs_dense["max"] == 0.04
    assert vs_dense["mean"] == 0.01 and vs_dense["median"] == 0.01 and vs_dense["stdev"] == 0.03
    assert vs_dense["sem"] == round(0.03 / 3**0.5, 4)
    assert got["targets"]["all_vs_dense_multistep"]["runs_met"] == 1  # only +0.08 passes 0.05
    part = tmp_path / "part-dense.json"
    part.write_text(json.dumps({"modes": {"dense": mode(0.9, 0.02, 1.0, 0.8)}, "training": {}}))
    try:
        q.summarize([part], out)
    except SystemExit as exc:
        assert "part-dense.json" in str(exc) and "merge" in str(exc)
    else:
        raise AssertionError("a run without APR was summarised")
    # APR alone (--modes apr, one per seed): its own targets over the runs, no comparisons
    alone = tmp_path / "apr-seed0.json"
    alone.write_text(json.dumps({"modes": {"apr": mode(0.95, 0.02, 1.0, 0.8)}, "training": {}}))
    q.summarize([alone, alone], out)
    got = json.loads(out.read_text())
    assert got["n_runs"] == 2 and got["targets"]["apr_accuracy"]["runs_met"] == 2
    assert "apr_vs_dense" not in got["targets"]


def test_a_certified_run_states_issue_30_s_targets() -> None:
    q = quality()
    apr = {
        **mode(0.93, 0.005, 1.0, 0.8),
        "risk": {"alpha": 0.01, "delta": 0.1},
        "selective_risk": 0.006,
        "coverage": 0.935,
        "confident_hallucination": 0.0022,
        "routed_fraction": 0.121,
        "heldout_phrasing": {
            "accuracy": 0.74,
            "hallucination_rate": 0.0056,
            "confident_hallucination": 0.0015,
            "selective_risk": 0.012,
        },
    }
    got = q.targets({"apr": apr})
    assert got["apr_selective_risk"]["met"] and not got["apr_heldout_selective_risk"]["met"]
    assert not got["apr_coverage"]["met"] and got["apr_coverage"]["target"] == ">= 0.95"
    assert not got["apr_confident_hallucination"]["met"]  # 0.0022 > 0.002
    assert got["apr_heldout_confident_hallucination_served"]["met"]
    assert got["apr_routed_at_least"]["met"] and got["apr_routed_at_most"]["met"]
    assert "apr_vs_dense" not in got


def test_model_overrides_take_typed_fields_and_refuse_unknown_ones() -> None:
    q = quality()
    model = q.model_overrides(["n_layer=1", "route_fraction=0.2"])
    assert model["n_layer"] == 1 and model["route_fraction"] == 0.2
    assert model["d_model"] == q.MAIN_JOB.model_fields()["d_model"]
    # a switch reads as written: "false" turns it off (bool("false") would be True)
    assert q.model_overrides(["clause_read=false"])["clause_read"] is False
    assert q.model_overrides(["clause_read=1"])["clause_read"] is True
    for bad in (["depth=3"], ["n_layer"], ["n_layer=two"], ["clause_read=maybe"]):
        try:
            q.model_overrides(bad)
        except SystemExit as exc:
            assert bad[0] in str(exc)
        else:
            raise AssertionError(f"{bad} was accepted")


def test_accuracy_by_key_groups_outcomes_by_domain_kind_and_question(tmp_path: Path) -> None:
    from models.evaluate import qa_key
    from worldgen.dataset import generate, load_qa

    q = quality()
    uri = str(tmp_path / "data")
    generate(["legal"], 60, 0, uri)
    frame = load_qa(uri, "test", per_domain=20)
    # every question of one key right, every other one wrong
    first = frame["key"].iloc[0]
    outcomes = {
        qa_key(d, i): "correct" if k == first else "incorrect"
        for d, i, k in zip(frame["domain"], frame["qa_id"], frame["key"], strict=True)
    }
    # what the benchmark shows of a mistake: all but the question
    wrong = {"said": "no", "derivation": "", "truth": "yes", "truth_derivation": "1 > 0"}
    mistakes = {k: {"question": "?", **wrong} for k, o in outcomes.items() if o != "correct"}
    got = q.accuracy_by_key(uri, 20, outcomes, mistakes)
    assert sum(v["n"] for v in got.values()) == len(frame)
    for name, value in got.items():
        domain, kind, key = name.split("/")
        assert domain == "legal" and kind in {"lookup", "derived", "multistep", "unknown"}
        assert value["accuracy"] == (1.0 if key == first else 0.0)
        shown = [] if key == first else [wrong]
        assert value["mistakes"] == shown * min(value["n"], q.MISTAKES_SHOWN)


def test_reuse_evaluates_a_kept_model_with_this_code_s_guide(tmp_path: Path) -> None:
    """``--reuse`` copies the folder ``--keep`` wrote and writes the guide this code builds for
    the dataset over the one it was trained with; a missing folder is one line, no traceback."""
    import argparse

    import pytest

    from models.config import TrainConfig
    from models.guide import GUIDE, Guide
    from worldgen.dataset import generate

    q = quality()
    uri = str(tmp_path / "data")
    generate(["legal"], 60, 0, uri)
    kept = tmp_path / "kept" / "seed0-apr"
    kept.mkdir(parents=True)
    (kept / "model.safetensors").write_bytes(b"weights")
    (kept / GUIDE).write_text(json.dumps({"questions": {}, "marks": {}}))  # an older guide
    args = argparse.Namespace(reuse=str(tmp_path / "kept"), seed=0)
    config = TrainConfig(out=str(tmp_path / "run-apr"))
    result = q.reused(uri, "apr", args, config)
    model_dir = Path(result.model_dir)
    assert (model_dir / "model.safetensors").read_bytes() == b"weights"
    guide = Guide.load(model_dir)
    assert guide is not None and guide.constants["plaintiff_won"] == ["== 'liable'"]
    with pytest.raises(SystemExit, match=r"no model at .*seed1-apr; write one with --keep"):
        q.reused(uri, "apr", argparse.Namespace(reuse=args.reuse, seed=1), config)
