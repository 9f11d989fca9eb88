"""The Prefect flows: parameters, a rejected dataset, crash + resume from cache, and a rerun
that does no work. Pipeline runs happen in subprocesses (each with its own PREFECT_HOME and
Prefect's temporary server), as ``veracity run`` would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import mlflow
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from flows.cli import app as veracity
from flows.params import TrainParams, check_params, stable_hash
from flows.summary import summary_markdown
from flows.tasks import _train_key
from infra.settings import get_settings
from models.evaluate import resolve_model
from models.sizes import TINY_MODEL
from tests.conftest import pipeline_env

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(TINY_MODEL)


# ------------------------------------------------------------------ parameters (no Prefect)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"n": 5}, "n"),
        ({"domains": ["astro"]}, "unknown domain"),
        ({"train": {"mode": "turbo"}}, "mode"),
        ({"train": {"max_steps": 0}}, "max_steps"),
        ({"train": {"bogus": 1}}, "bogus"),
    ],
)
def test_invalid_parameters_fail_before_any_work(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        check_params(**kwargs)


def test_run_command_rejects_bad_input_in_one_line(
    veracity_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    runner = CliRunner()
    app = veracity
    result = runner.invoke(app, ["run", "--n", "3"])
    assert result.exit_code == 2
    assert "error: n:" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["run", "--domain", "astro"])
    assert result.exit_code == 2 and "unknown domain" in result.output
    result = runner.invoke(app, ["deploy", "--nightly", "every night"])
    assert result.exit_code == 2 and "cron" in result.output
    monkeypatch.setenv("VERACITY_BASE_PRECISION", "fp8")
    result = runner.invoke(app, ["run", "--n", "50"])
    assert result.exit_code == 2 and "VERACITY_BASE_PRECISION must be one of" in result.output
    assert result.output.strip().count("\n") == 0
    assert not (veracity_home / "datasets").exists()  # nothing was started


def test_a_model_trained_in_fp32_has_its_own_cache_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERACITY_BASE_PRECISION", "bf16")
    bf16 = TrainParams(model=TINY).config_hash()
    recorded = TrainParams(model=TINY).model_dump(exclude={"base", "base_tuning"})
    assert bf16 == stable_hash(recorded)  # keys recorded so far hold (no --base: as before)
    monkeypatch.setenv("VERACITY_BASE_PRECISION", "fp32")
    assert TrainParams(model=TINY).config_hash() != bf16


def test_cache_keys_follow_references_and_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")  # a base folder, as far as the check reads
    a = TrainParams(model=TINY)
    b = TrainParams(model=TINY, max_steps=7)
    assert a.config_hash() == TrainParams(model=dict(TINY)).config_hash()
    assert a.config_hash() != b.config_hash()
    assert a.config_hash() != TrainParams(model=TINY, base=str(tmp_path)).config_hash()
    base = {"uri": "/d", "digest": "x" * 64, "params": a}
    key = _train_key(None, base)  # type: ignore[arg-type]
    assert key == _train_key(None, dict(base))  # type: ignore[arg-type]
    assert key != _train_key(None, {**base, "digest": "y" * 64})  # type: ignore[arg-type]
    assert key != _train_key(None, {**base, "params": b})  # type: ignore[arg-type]


# ------------------------------------------------------------------ flows in subprocesses


def start_pipeline(env: dict[str, str], args: dict[str, Any], out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.pipeline", json.dumps(args), str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a crash takes its children too
    )


def finish(proc: subprocess.Popen[str], timeout: float) -> str:
    out, _ = proc.communicate(timeout=timeout)
    return out


@pytest.mark.slow
def test_rejected_dataset_stops_before_training(tmp_path: Path, veracity_home: Path) -> None:
    from worldgen.dataset import generate
    from worldgen.domains import get_domain
    from worldgen.inject import inject_faults

    clean = generate(["medical"], 150, 3, str(tmp_path / "clean"))
    mode = next(iter(get_domain("medical").faults))
    bad = inject_faults(clean.uri, "medical", mode, 0.1, 0, str(tmp_path / "bad"))
    args = {
        "domains": ["medical"],
        "n": 150,
        "seed": 3,
        "out": bad.uri,
        "train_params": {"max_steps": 5, "model": TINY},
    }
    # The faulty copy has another manifest (seed and size match): the flow validates it.
    proc = start_pipeline(
        pipeline_env(veracity_home, tmp_path / "prefect"), args, tmp_path / "r.json"
    )
    out = finish(proc, 400)
    assert proc.returncode != 0, out
    assert "validation FAILED" in out and "RejectedDataset" in out
    assert not (veracity_home / "runs").exists()  # nothing trained
    side = json.loads((Path(bad.uri) / "validation.json").read_text())
    assert side["status"] == "rejected"
    assert not (tmp_path / "r.json").exists()


@pytest.mark.slow
def test_crash_in_training_resumes_from_cache_and_checkpoint(
    tmp_path: Path, veracity_home: Path
) -> None:
    env = pipeline_env(veracity_home, tmp_path / "prefect")
    args = {
        "domains": ["medical"],
        "n": 200,
        "seed": 5,
        "train_params": {
            "max_steps": 60,
            "checkpoint_every": 5,
            "val_check_interval": 30,
            "batch_size": 8,
            "model": TINY,
        },
    }
    first = start_pipeline(env, args, tmp_path / "first.json")
    deadline = time.time() + 400
    ckpt = None
    while time.time() < deadline and first.poll() is None:
        found = list((veracity_home / "runs").glob("*/checkpoints/last.ckpt"))
        if found:
            ckpt = found[0]
            time.sleep(1.0)  # let the file be complete
            break
        time.sleep(0.5)
    assert ckpt is not None, "training never wrote a checkpoint"
    os.killpg(first.pid, signal.SIGKILL)  # the job and its temporary server die mid-training
    first.communicate(timeout=30)
    assert not (tmp_path / "first.json").exists()

    second = start_pipeline(env, args, tmp_path / "second.json")
    out = finish(second, 600)
    assert second.returncode == 0, out[-4000:]
    result = json.loads((tmp_path / "second.json").read_text())
    stages = result["stages"]
    assert stages["generate"]["cached"] and stages["validate"]["cached"], stages
    assert not stages["train"]["cached"]
    assert (result["model"]["resumed_from_step"] or 0) >= 5, result["model"]
    assert result["model"]["steps"] == 60
    assert result["promotion"]["decision"]["action"] == "promote"
    assert result["model"]["model_uri"].startswith("models:/")
    assert "Cached" in out
    # The summary's pictures are the plots logged on the training run, as `veracity ui` serves them
    logged = mlflow.MlflowClient(get_settings().tracking_uri).list_artifacts(
        result["model"]["run_id"], "eval"
    )
    assert set(result["plots"]) == {"reliability", "routed_by_kind", "risk_coverage"}
    for name, url in result["plots"].items():
        asked = parse_qs(urlparse(url).query)
        assert asked["run_uuid"] == [result["model"]["run_id"]], url
        assert asked["path"][0] in {a.path for a in logged}, (url, logged)
        assert f"![{name}]({url})" in summary_markdown(result)
    # The registered model abstains at the threshold its evaluation, which the gate read, chose.
    evaluated = json.loads(Path(result["evaluation"]["report_path"]).read_text())
    try:
        served = resolve_model(f"models:/veracity-apr/{result['promotion']['version']}")
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    routing = json.loads((Path(served) / "routing.json").read_text())
    assert routing["abstain_threshold"] == evaluated["abstain_threshold"], routing
    # ... from a served folder of its own: the cached training output was never written into
    trained = json.loads((Path(result["model"]["model_dir"]) / "routing.json").read_text())
    assert "abstain_threshold" not in trained, trained

    # A finished pipeline re-run does no work: every stage comes from the cache.
    third = start_pipeline(env, args, tmp_path / "third.json")
    out = finish(third, 300)
    assert third.returncode == 0, out[-4000:]
    again = json.loads((tmp_path / "third.json").read_text())
    assert all(s["cached"] for s in again["stages"].values()), again["stages"]
    assert again["promotion"]["version"] == result["promotion"]["version"]
