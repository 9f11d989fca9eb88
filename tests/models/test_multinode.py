"""Training across nodes: 2 nodes x 1 process on this machine (gloo over loopback), each node
its own launched process with its own NODE_RANK, as on two machines.

Node 0 is the pipeline's `train` flow (what a Prefect work pool runs on the master), node 1 a
bare `veracity train` worker. The run must give one checkpoint and one model (node 0's), one
MLflow training run (logged by the process that ends with the model; the worker logs nothing),
and the same weights as one node with 2 processes at the same global batch (2 x 4).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from flows.cli import app
from infra.procs import free_port
from infra.settings import get_settings
from tests.conftest import accept, pipeline_env
from worldgen import dataset as ds

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# what both runs train: the tiny size, 6 steps of 4 examples a process, one seed
RUN = {"size": "tiny", "max_steps": 6, "batch_size": 4, "seed": 3}
FLOW = """
import json, sys
from flows.params import TrainParams
from flows.pipeline import train
out = train(sys.argv[1], params=TrainParams(**json.loads(sys.argv[2])))
print("RESULT " + json.dumps(out, default=str))
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> ds.DatasetRef:
    root = tmp_path_factory.mktemp("nodes")
    ref = ds.generate(["medical"], 200, 2, str(root / "m"))
    accept(ref.uri, root / "home")
    return ref


def _options(**fields: object) -> list[str]:
    return [arg for k, v in fields.items() for arg in (f"--{k.replace('_', '-')}", str(v))]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from flows.cli import app; app()", *args]


def _finish(proc: subprocess.Popen[str], others: list[subprocess.Popen[str]]) -> str:
    try:
        out, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        for p in [proc, *others]:
            p.kill()
        raise
    assert proc.returncode == 0, (out[-2000:], err[-4000:])
    return out


def test_two_nodes_train_one_model_logged_once_equal_to_one_node(
    small: ds.DatasetRef, tmp_path: Path, veracity_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one thread a process in both topologies: another thread count sums in another order
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    port = str(free_port())
    env = pipeline_env(veracity_home, tmp_path / "prefect")
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    two = {**RUN, "num_nodes": 2, "devices": 1, "strategy": "ddp"}
    worker_out = tmp_path / "worker"
    worker = subprocess.Popen(
        _cli("train", small.uri, *_options(**two), "--out", str(worker_out)),
        env={**env, "NODE_RANK": "1"},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    master = subprocess.Popen(
        [sys.executable, "-c", FLOW, small.uri, json.dumps(two)],
        env={**env, "NODE_RANK": "0"},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    result = json.loads(_finish(master, [worker]).split("RESULT ", 1)[1])
    said = _finish(worker, [master])
    assert "node 1 of 2: trained as a worker (6 steps); node 0 writes the model" in said
    assert result["steps"] == 6

    # one model and one checkpoint folder, node 0's; the worker's folder holds its result only
    run_dir = Path(result["run_dir"])
    assert list(run_dir.rglob("model.safetensors")) == [run_dir / "model" / "model.safetensors"]
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["last.ckpt"]
    assert not list(worker_out.rglob("*.safetensors")) and not list(worker_out.rglob("*.ckpt"))
    assert json.loads((worker_out / "result.node1.json").read_text())["model_dir"] == ""

    # one MLflow training run: the worker logged nothing
    client = mlflow.MlflowClient(get_settings().tracking_uri)  # the home both processes share
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        "tags.`veracity.stage` = 'train'",
    )
    assert [r.info.run_id for r in runs] == [result["run_id"]]

    # the same weights as one node with two processes, at the same global batch
    single = tmp_path / "single"
    one = {**RUN, "devices": 2, "strategy": "ddp"}
    done = CliRunner().invoke(app, ["train", small.uri, *_options(**one), "--out", str(single)])
    assert done.exit_code == 0, done.output
    a = load_file(str(run_dir / "model" / "model.safetensors"))
    b = load_file(str(single / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.allclose(a[k], b[k], rtol=0, atol=1e-6, equal_nan=True)]
    assert not differ, differ


def test_more_nodes_without_a_cluster_environment_is_one_line(
    small: ds.DatasetRef, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_NTASKS", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    args = ["train", small.uri, "--tiny", "--num-nodes", "2", "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "--num-nodes 2: set NODE_RANK (0 on the master), MASTER_ADDR and MASTER_PORT" in (
        result.output
    )
    monkeypatch.setenv("NODE_RANK", "2")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29999")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "node rank 2 is not one of the 2 nodes (0 to 1)" in (
        result.output
    )
