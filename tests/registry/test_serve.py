"""``mlflow models serve -m models:/veracity-apr@champion`` works with only the installed package.

A tiny model is trained on a small generated (and validated) dataset, logged the way the pipeline
logs it, evaluated, registered as ``veracity-apr`` and made ``champion`` by the promotion gate
(with zero floors: a model this small never passes the default policy). MLflow's own CLI then
serves the champion from an empty working directory, with no ``PYTHONPATH`` and no Veracity
settings, and real test-split rows are scored over HTTP.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.procs import free_port, port_open
from infra.settings import get_settings
from models.sizes import TINY_MODEL
from registry import (
    CHAMPION,
    MODEL_NAME,
    PromotionPolicy,
    promote,
    record_evaluation,
    register_challenger,
    tracking,
)
from tests.conftest import was_read
from tests.registry.conftest import Registry
from tests.stopping import start, stop, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.integration]  # a real `mlflow models serve` process

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's bin: mlflow, and the uvicorn it execs
TINY = dict(TINY_MODEL)
# The gate with its floors at zero (as in tests/integration/test_server_profile.py).
PERMISSIVE = PromotionPolicy(min_accuracy=0.0, max_hallucination=1.0, latency_p95_budget_ms=1e9)
OUTPUT_KEYS = {
    "answer",
    "confidence",
    "abstained",
    "routed_fraction",
    "derivation",
    "error",
    "guaranteed",
    "novelty",
}
STARTUP_TIMEOUT_S = 90.0

# What the server's interpreter can import, seen from the same environment and directory.
PROBE = """
import importlib.metadata, importlib.util, json, sys
print(json.dumps({
    "path": sys.path,
    "tests": importlib.util.find_spec("tests") is not None,
    "answer": importlib.util.find_spec("models.answer") is not None,
    "dists": importlib.metadata.packages_distributions().get("models", []),
}))
"""


@dataclass
class Champion:
    version: int
    dataset_uri: str
    model_dir: str
    tracking_uri: str
    run_id: str = ""


@dataclass
class Server:
    url: str
    log: Path
    proc: subprocess.Popen[bytes]

    def log_tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@pytest.fixture
def champion(registry: Registry, veracity_home: Path) -> Champion:
    """A real tiny model, logged, evaluated, registered and promoted through the gate."""
    from models.config import TrainConfig
    from worldgen import dataset as ds

    ref = ds.generate(["medical"], 120, 4, str(veracity_home / "datasets" / "serve"))
    config = TrainConfig(
        max_steps=6, batch_size=8, val_check_interval=3, out=str(veracity_home / "run"), model=TINY
    )
    return gated_champion(ref, config, veracity_home)


def gated_champion(ref: Any, config: Any, home: Path) -> Champion:
    """``ref`` validated, a model trained on it with ``config``, logged as the pipeline logs
    it, evaluated, registered and made champion by the gate."""
    from models.certify import certify
    from models.evaluate import evaluate
    from models.train import train
    from validation import validate

    report = validate(ref, docs=False)
    assert report.success, report.summary()
    validation = {**report.to_json(), "status": "accepted", "result_id": ref.digest[:12]}
    result = train(ref.uri, config)
    run_id = tracking.log_training(asdict(result), asdict(config), validation)
    # As the pipeline does: evaluate, certify a served folder with the threshold, log it to serve.
    # A fixed threshold (1.1: never abstain) skips the search on the validation split; the
    # report is real, and a zero-floor gate is all it has to pass.
    evaluation = evaluate(result.model_dir, ref.uri, "test", abstain_threshold=1.1)
    served = certify(result.model_dir, evaluation.abstain_threshold, {"split": "test"})
    version = register_challenger(
        tracking.log_served_model(run_id, str(served)),
        run_id,
        {
            "validation_status": validation["status"],
            "dataset_uri": ref.uri,
            "dataset_digest": ref.digest,
            "suite_hash": report.suite_hash,
        },
    )
    record_evaluation(version, evaluation.to_dict())
    decision = promote(version, PERMISSIVE, actor="test-serve")
    assert decision.promoted, decision.reason
    # The server must load the registry's copy: move the training run directory out of the way.
    run_dir = Path(result.run_dir).rename(home / "run-moved")
    model_dir = run_dir / Path(result.model_dir).relative_to(result.run_dir)
    return Champion(version, ref.uri, str(model_dir), get_settings().tracking_uri, run_id)


def server_env(tracking_uri: str) -> dict[str, str]:
    """The environment a user's shell would have: the venv on PATH, the tracking store, and
    nothing pointing into the repository (no PYTHONPATH, no Veracity settings)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "VERACITY_", "PYTHON"))
    }
    env.update(
        PATH=os.pathsep.join([str(BIN), env.get("PATH", "")]),  # `mlflow` execs `uvicorn`
        MLFLOW_TRACKING_URI=tracking_uri,
        MLFLOW_REGISTRY_URI=tracking_uri,
        MLFLOW_ENABLE_TELEMETRY="false",
    )
    return env


def _request(url: str, body: dict[str, Any] | None = None) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(
                f"mlflow models serve exited with {server.proc.returncode}:\n{server.log_tail()}"
            )
        try:
            if _request(f"{server.url}/ping")[0] == 200:
                return
        except OSError:  # not listening yet
            pass
        time.sleep(0.5)
    pytest.fail(f"/ping not 200 within {STARTUP_TIMEOUT_S:.0f} s:\n{server.log_tail()}")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "cwd"
    path.mkdir()
    return path


@pytest.fixture
def server(champion: Champion, workdir: Path, tmp_path: Path) -> Iterator[Server]:
    """``mlflow models serve`` on the champion, in its own process group (killed afterwards)."""
    port = free_port()
    log = tmp_path / "serve.log"
    cmd = [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{MODEL_NAME}@{CHAMPION}"]
    cmd += ["--env-manager", "local", "--host", "127.0.0.1", "-p", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=server_env(champion.tracking_uri),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Server(f"http://127.0.0.1:{port}", log, proc)
    try:
        _wait_until_up(served)
        yield served
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes], grace_s: float = 20.0) -> None:
    """SIGTERM to the whole process group (mlflow and the uvicorn it execs), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        proc.poll()  # reap the group leader once it exits
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:  # no process of the group is left
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def test_only_the_installed_package_is_importable_there(workdir: Path) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=workdir,
        text=True,
        capture_output=True,
        env=server_env(get_settings().tracking_uri),
        timeout=120,
        check=True,
    )
    seen = json.loads(probe.stdout)
    on_path = {Path(p or workdir).resolve() for p in seen["path"]}
    assert ROOT not in on_path and not seen["tests"], seen  # the checkout is not on sys.path
    assert seen["answer"] and seen["dists"] == ["veracity"], seen  # the package is installed


def test_champion_served_by_mlflow_cli(champion: Champion, server: Server) -> None:
    from models.answer import Answerer
    from worldgen import dataset as ds

    rows = ds.load_qa(champion.dataset_uri, "test").head(2)
    data = rows[["document", "question"]].values.tolist()
    assert len(data) == 2
    too_long = [" ".join([data[0][0]] * 20), data[0][1]]  # one row over the model's positions
    status, body = _request(
        f"{server.url}/invocations",
        {"dataframe_split": {"columns": ["document", "question"], "data": [*data, too_long]}},
    )
    assert status == 200, f"{status} {body}\n{server.log_tail()}"
    *predictions, unread = json.loads(body)["predictions"]
    assert len(predictions) == 2, predictions
    assert unread["answer"] == "unknown" and unread["abstained"], unread
    assert "max_seq_len" in unread["error"] and unread["confidence"] == 0.0, unread
    local = Answerer.load(champion.model_dir)  # the same weights, answering in this process
    for (doc, question), pred in zip(data, predictions, strict=True):
        assert set(pred) == OUTPUT_KEYS, pred
        assert isinstance(pred["answer"], str), pred
        assert isinstance(pred["confidence"], float) and 0.0 <= pred["confidence"] <= 1.0, pred
        assert isinstance(pred["abstained"], bool), pred
        assert isinstance(pred["routed_fraction"], float), pred
        assert 0.0 <= pred["routed_fraction"] <= 1.0, pred
        expected = local(doc, question)
        assert pred["answer"] == expected.text, (pred, expected)
        assert pred["derivation"] == expected.derivation, (pred, expected)
        assert pred["confidence"] == pytest.approx(1.0 - expected.uncertainty, abs=1e-4)
        assert pred["error"] == expected.error and was_read(expected), pred

    status, body = _request(
        f"{server.url}/invocations",
        {"dataframe_split": {"columns": ["document"], "data": [[data[0][0]]]}},
    )
    assert 400 <= status < 600, (status, body)
    assert "missing" in body.lower() and "question" in body, body
    assert server.proc.poll() is None, server.log_tail()  # a bad request does not kill it


def test_veracity_serve_stops_with_its_scoring_server(champion: Champion, tmp_path: Path) -> None:
    """SIGTERM ends `veracity serve` and the mlflow/uvicorn processes under it within 10 s."""
    port, log = free_port(), tmp_path / "veracity-serve.log"
    env = {**os.environ, "MLFLOW_ENABLE_TELEMETRY": "false"}
    proc = start(["serve", "--port", str(port)], env, log)

    def answering() -> bool:
        try:
            return _request(f"http://127.0.0.1:{port}/ping")[0] == 200
        except OSError:
            return False

    wait_for(answering, proc, log, STARTUP_TIMEOUT_S)
    assert f"serving {MODEL_NAME} v{champion.version}" in log.read_text()
    assert stop(proc, log) == 128 + signal.SIGTERM
    assert not port_open("127.0.0.1", port)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_a_fine_tuned_base_is_gated_and_served(
    kind: str, registry: Registry, veracity_home: Path, tmp_path: Path
) -> None:
    """A tiny Hugging Face base (``tests.hf_bases``) fine-tuned with LoRA passes the gate, shows
    in its run's lineage and answers through `veracity serve` as it does in this process."""
    import mlflow

    from models.answer import Answerer
    from tests.hf_bases import base_run, save_base
    from worldgen import dataset as ds

    ref = ds.generate(["medical"], 120, 4, str(veracity_home / "datasets" / "serve"))
    train_qa = ds.load_qa(ref.uri, "train")
    base = save_base(kind, [*train_qa["document"], *train_qa["question"]], tmp_path / kind)
    config = base_run(base, "lora", veracity_home / "run")
    champion = gated_champion(ref, config, veracity_home)
    tags = mlflow.get_run(champion.run_id).data.tags
    assert tags["base.path"] == str(base.resolve()) and tags["base.model_type"] == kind
    assert tags["base.tuning"] == "lora" and int(tags["base.parameters"]) > 0

    port, log = free_port(), tmp_path / "veracity-serve.log"
    # a registry URI in the environment (a user's shell; mlflow.set_registry_uri leaves one in
    # os.environ) must not change which model is served: the gated version of this store is
    elsewhere = f"sqlite:///{tmp_path / 'another-registry.db'}"
    proc = start(
        ["serve", "--port", str(port)], {**os.environ, "MLFLOW_REGISTRY_URI": elsewhere}, log
    )
    try:
        wait_for(lambda: port_open("127.0.0.1", port), proc, log, STARTUP_TIMEOUT_S)
        rows = ds.load_qa(ref.uri, "test").head(2)
        data = rows[["document", "question"]].values.tolist()
        body = {"dataframe_split": {"columns": ["document", "question"], "data": data}}
        status, text = _request(f"http://127.0.0.1:{port}/invocations", body)
        assert status == 200, f"{status} {text}\n{log.read_text()[-3000:]}"
        local = Answerer.load(champion.model_dir)
        for (doc, question), pred in zip(data, json.loads(text)["predictions"], strict=True):
            expected = local(doc, question)
            assert set(pred) == OUTPUT_KEYS and pred["error"] == expected.error, pred
            assert pred["answer"] == expected.text and was_read(expected), pred
    finally:
        stop(proc, log)
