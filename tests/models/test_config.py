"""One source of truth: training defaults, presets, model sizes and modes live in one place."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import get_type_hints

import pytest
import torch

from flows.params import TrainParams
from models import modes
from models.apr import APRConfig, APRTransformer
from models.config import FIELDS, PRESETS, TrainConfig, TrainingInputError, run_fields
from models.sizes import MODEL_SIZES
from models.train import train
from worldgen.dataset import DatasetError

ROOT = Path(__file__).resolve().parents[2]


def test_flow_parameters_are_the_training_config() -> None:
    assert set(TrainParams.model_fields) == set(FIELDS) - set(run_fields())
    types = get_type_hints(TrainConfig)
    for name, f in TrainParams.model_fields.items():  # the same types, not only the same names
        assert f.annotation == types[name], name
        assert f.description == TrainConfig.field_help(name), name
    assert TrainParams().to_config() == TrainConfig() == PRESETS["cpu"]
    with pytest.raises(ValueError, match="--mode must be one of dense, apr, all, random"):
        TrainParams(mode="sparse")


def test_presets_and_sizes_are_named() -> None:
    assert TrainConfig.from_preset("smoke").model_fields() == MODEL_SIZES["tiny"]
    assert APRConfig.from_name("gpu").d_model == MODEL_SIZES["gpu"]["d_model"]
    assert TrainConfig.from_preset("cpu", max_steps=5).max_steps == 5
    with pytest.raises(TrainingInputError, match="preset must be one of cpu, smoke, gpu"):
        TrainConfig.from_preset("huge")


def test_changing_a_default_in_one_place_changes_the_cli_the_flow_and_the_benchmark() -> None:
    """A fresh process whose models/config.py says 1234 steps: every reader says 1234."""
    code = r"""
import re, sys, types, pathlib, importlib.util
import models
src = pathlib.Path("models/config.py").read_text()
default = re.search(r"max_steps: int = _opt\((\d+),", src).group(0)
mod = types.ModuleType("models.config")
sys.modules["models.config"] = mod
exec(compile(src.replace(default, "max_steps: int = _opt(1234,"), "models/config.py", "exec"), mod.__dict__)
from typer.testing import CliRunner
from flows.cli import app
from flows.params import TrainParams
spec = importlib.util.spec_from_file_location("quality", "benchmarks/quality.py")
quality = importlib.util.module_from_spec(spec)
spec.loader.exec_module(quality)
helps = [CliRunner().invoke(app, [c, "--help"]).output for c in ("train", "run")]
print(TrainParams().max_steps, quality.MAIN_JOB.max_steps, *("(default 1234)" in h for h in helps))
"""
    env = {**os.environ, "COLUMNS": "240", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.stdout.split() == ["1234", "1234", "True", "True"], out.stderr[-3000:]


def test_adding_a_mode_is_one_registry_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A toy mode that refines only the first token, registered from the test: the model, the
    training config and the flow parameters accept it, and it routes as its function says."""

    def first_token(
        model: modes.Router, scores: torch.Tensor, idx: torch.Tensor, pos: torch.Tensor
    ) -> torch.Tensor:
        return pos == 0

    toy = modes.Mode("first", "the first token only", first_token)
    monkeypatch.setitem(modes.MODES, "first", toy)
    TrainConfig(mode="first").check()
    assert TrainParams(mode="first").mode == "first"
    cfg = replace(APRConfig.from_name("tiny", vocab_size=64), mode="first")
    out = APRTransformer(cfg).eval()(torch.randint(0, 64, (2, 9)))
    assert out.routed[:, 0].all() and not out.routed[:, 1:].any()


def test_training_a_folder_without_a_manifest_is_one_clear_line(tmp_path: Path) -> None:
    """Training reads the digest from the manifest; whether the dataset was accepted is the
    caller's check (``validation.require_accepted``), not training's."""
    with pytest.raises(
        DatasetError, match=r"manifest\.json is missing \(run `veracity generate`\)"
    ):
        train(str(tmp_path / "nothing"), TrainConfig.from_preset("smoke"))
