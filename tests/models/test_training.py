"""Lightning training on a real (small) world-model dataset: one device, DDP on CPU, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from models.answer import Answerer
from models.checkpoint import load_model
from models.config import TrainConfig
from models.sizes import TINY_MODEL
from models.train import ROUTING_QUESTIONS, calibrate_on_written, train
from tests.conftest import accept
from worldgen import dataset as ds

TINY = dict(TINY_MODEL)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> ds.DatasetRef:
    root = tmp_path_factory.mktemp("d")
    ref = ds.generate(["medical"], 300, 2, str(root / "m"))
    accept(ref.uri, root / "home")  # the command trains only on an accepted dataset
    return ref


def test_trains_and_exports_weights_only_model(small: ds.DatasetRef, tmp_path: Path) -> None:
    result = train(
        small.uri,
        TrainConfig(
            max_steps=12, batch_size=8, val_check_interval=6, out=str(tmp_path / "run"), model=TINY
        ),
    )
    assert result.steps == 12 and result.dataset_digest == small.digest
    files = {p.name for p in Path(result.model_dir).iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "routing.json"} <= files
    model, tok = load_model(result.model_dir)
    assert float(model.route_threshold) == pytest.approx(result.route_threshold)
    assert 0.0 <= result.metrics["val/estimator_auroc"] <= 1.0
    assert tok.vocab_size == model.cfg.vocab_size
    # the threshold routes the target share of what the model writes, not of the references
    calibrate_on_written(model, tok, small.uri)
    qa = ds.load_qa(small.uri, "validation")
    pairs = list(zip(qa["document"], qa["question"], strict=True))
    written = Answerer(model, tok).answer_scores(pairs)
    assert len(qa) <= ROUTING_QUESTIONS and written.numel() > 100
    routed = float((written >= model.route_threshold).float().mean())
    assert routed == pytest.approx(model.cfg.route_fraction, abs=0.01)


def test_bad_mode_is_one_line_error(small: ds.DatasetRef) -> None:
    result = CliRunner().invoke(app, ["train", small.uri, "--mode", "sparse"])
    assert result.exit_code == 2 and "--mode must be one of" in result.output
    assert "Traceback" not in result.output


def test_another_config_trains_in_its_own_run_dir(small: ds.DatasetRef) -> None:
    first = train(small.uri, TrainConfig(max_steps=2, batch_size=8, model=TINY))
    narrow = train(small.uri, TrainConfig(max_steps=2, batch_size=8, model={**TINY, "d_model": 32}))
    assert first.run_dir != narrow.run_dir
    assert load_model(first.model_dir)[0].cfg.d_model == TINY["d_model"]  # not overwritten


def test_resuming_another_config_is_refused_and_keeps_the_checkpoint(
    small: ds.DatasetRef, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    config = TrainConfig(max_steps=2, batch_size=8, checkpoint_every=1, out=str(out), size="tiny")
    train(small.uri, config)
    last = out / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    args = ["train", small.uri, "--tiny", "--batch-size", "8", "--out", str(out), "--resume"]
    result = CliRunner().invoke(app, [*args, "--max-steps", "3"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "trained another config (max_steps differ)" in result.output
    assert last.read_bytes() == before


def test_an_out_that_cannot_be_written_is_one_line(small: ds.DatasetRef, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = CliRunner().invoke(app, ["train", small.uri, "--tiny", "--out", str(blocker / "run")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"error: cannot create {blocker}/run" in result.output


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from flows.cli import app; app()", *args]


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_gives_one_checkpoint(
    small: ds.DatasetRef, tmp_path: Path
) -> None:
    out = tmp_path / "ddp"
    proc = subprocess.run(
        _cli(
            "train",
            small.uri,
            "--devices",
            "2",
            "--strategy",
            "ddp",
            "--max-steps",
            "6",
            "--batch-size",
            "4",
            "--tiny",
            "--out",
            str(out),
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "steps  6" in proc.stdout
    assert list(out.rglob("model.safetensors")) == [out / "model" / "model.safetensors"]


@pytest.mark.slow
def test_resume_after_kill_reaches_the_same_step_count(
    small: ds.DatasetRef, tmp_path: Path
) -> None:
    out = tmp_path / "crash"
    args = _cli(
        "train", small.uri, "--max-steps", "400", "--batch-size", "4", "--tiny", "--out", str(out)
    )
    proc = subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert last.exists(), "training never wrote a checkpoint"
    assert not (out / "result.json").exists(), "training finished before it could be killed"
    done = subprocess.run(
        [*args, "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Restoring states from the checkpoint" in done.stderr  # resumed, not restarted
    assert json.loads((out / "result.json").read_text())["steps"] == 400
