"""The pipeline's Prefect tasks and their helpers: each stage of ``worldgen``, ``validation``,
``models`` and ``registry`` as a task with persisted results, a cache key built from references
and a config hash (:data:`~flows.params.KEY_VERSION`), and retries on I/O errors only."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from prefect import get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.states import State
from prefect_dask import DaskTaskRunner

from flows.params import KEY_VERSION, TrainParams, stable_hash
from infra import storage
from infra.settings import get_settings
from models.certify import certify
from models.evaluate import evaluate
from models.train import train
from registry import promote, record_evaluation, register_challenger, registry_table, tracking
from validation import validate
from validation.acceptance import current_suite_hashes
from worldgen.dataset import (
    IN_FAMILY,
    DatasetError,
    DatasetRef,
    dataset_digest,
    generate,
    read_manifest,
)
from worldgen.domains import get_domain

IO_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, ConnectionError)


# ------------------------------------------------------------------------------ helpers


class RejectedDataset(RuntimeError):
    """The dataset failed validation: the pipeline stops before training."""

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__(report["summary"])
        self.report = report


def _key(stage: str, *parts: Any) -> str:
    return f"veracity-{stage}-{stable_hash([KEY_VERSION, stage, *parts])[:40]}"


def results_dir() -> Path:
    """Where Prefect persists task results and cache records: under the Veracity home."""
    return (get_settings().home / "prefect-results").resolve()


def _retry_on_io(task_: Any, task_run: Any, state: State[Any]) -> bool:
    try:
        state.result()
    except IO_ERRORS:
        return True
    except BaseException as exc:
        return _transient_s3(exc)
    return False


def _transient_s3(exc: BaseException) -> bool:
    """botocore gave up on a 5xx / throttling answer or a lost connection (after its own
    retries): worth one more try of the whole task. A 4xx (missing key, denied) is not."""
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return status >= 500 or exc.response.get("Error", {}).get("Code") == "SlowDown"
    return False


@contextmanager
def heartbeat(label: str, every_s: float = 30.0) -> Iterator[None]:
    """Log ``label still running (N s)`` every ``every_s`` while a long stage works."""
    logger = get_run_logger()
    stop = threading.Event()
    start = time.perf_counter()

    def beat() -> None:
        while not stop.wait(every_s):
            logger.info("%s still running (%.0f s)", label, time.perf_counter() - start)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=1)


def _stage_task(fn: Any) -> Any:
    return fn.with_options(result_storage=results_dir())


def run_task(fn: Any, **kwargs: Any) -> tuple[Any, bool]:
    """Run a task; returns its value and whether it came from the cache."""
    state = _stage_task(fn)(**kwargs, return_state=True)
    value = state.result()
    return value, state.name == "Cached"


# ------------------------------------------------------------------------------ tasks

TASK_OPTIONS: dict[str, Any] = {
    "persist_result": True,
    "retries": 2,
    "retry_delay_seconds": 2,
    "retry_condition_fn": _retry_on_io,
}


def _generate_key(ctx: TaskRunContext, p: dict[str, Any]) -> str:
    phrasing = p.get("phrasing", IN_FAMILY)
    return _key("generate", sorted(p["domains"]), p["n"], p["seed"], p["out"], phrasing)


@task(name="generate-shard", cache_policy=NO_CACHE, **TASK_OPTIONS)
def generate_shard(fn: Any, plan: Any) -> dict[str, Any]:
    """One shard of a dataset (``worldgen.dataset.run_plan``), on the flow's task runner."""
    return dict(fn(plan))


def _task_runner_mapper(fn: Any, plans: Any) -> Any:
    """A ``worldgen.dataset.Mapper`` that runs shards as tasks on the current flow's task runner
    (threads by default, Dask workers under ``DaskTaskRunner``), in plan order."""
    futures = generate_shard.map(unmapped(fn), list(plans))
    return iter([f.result() for f in futures])


def dask_task_runner(address: str) -> Any:
    """``DaskTaskRunner`` on a scheduler address, or a 2-worker ``LocalCluster`` for 'local'."""
    if address == "local":
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True,
                            "host": "127.0.0.1", "dashboard_address": None},
        )  # fmt: skip
    return DaskTaskRunner(address=address)


@task(name="generate-dataset", cache_key_fn=_generate_key, **TASK_OPTIONS)
def generate_dataset(
    domains: list[str], n: int, seed: int, out: str, shards: int = 1, phrasing: str = IN_FAMILY
) -> dict[str, str]:
    if storage.exists(storage.join(out, "manifest.json")):
        m = read_manifest(out)
        if (
            m.get("seed") != seed
            or m.get("n_per_domain") != n
            or sorted(m["domains"]) != sorted(domains)
            or m.get("phrasing", {}).get("rendering") != phrasing
        ):
            raise DatasetError(f"{out} already holds another dataset; choose a new out")
        today = {d: get_domain(d).spec.spec_hash for d in domains}
        if dataset_digest(m) != m["digest"] or any(
            m["domains"][d].get("spec_hash") != h for d, h in today.items()
        ):  # same seed and size, but another world model (or an older Veracity) wrote it
            raise DatasetError(
                f"{out} holds a dataset of another version of the world model; "
                "remove it or choose a new out (datasets are never overwritten)"
            )
        get_run_logger().info("reusing %s (same seed and size give the same dataset)", out)
        return {"uri": out, "digest": str(m["digest"])}
    mapper = _task_runner_mapper if shards > 1 else None
    ref = generate(domains, n, seed, out, shards=shards, mapper=mapper, phrasing=phrasing)
    return {"uri": ref.uri, "digest": ref.digest}


def _validate_key(ctx: TaskRunContext, p: dict[str, Any]) -> str:
    """A verdict is reused only for the same content judged by the same suites."""
    domains = sorted(read_manifest(p["uri"])["domains"])
    return _key("validate", p["uri"], p["digest"], current_suite_hashes(domains))


@task(name="validate-dataset", cache_key_fn=_validate_key, **TASK_OPTIONS)
def validate_dataset(uri: str, digest: str) -> dict[str, Any]:
    report = validate(DatasetRef(uri, digest))
    return {
        **report.to_json(),
        "status": "accepted" if report.success else "rejected",
        "summary": report.summary(),
        "result_id": f"{digest[:12]}-{report.suite_hash[:12]}",
    }


def _train_key(ctx: TaskRunContext, p: dict[str, Any]) -> str:
    return _key("train", p["uri"], p["digest"], p["params"].config_hash())


def _run_dir(digest: str, params: TrainParams) -> Path:
    return get_settings().home / "runs" / f"{digest[:12]}-{params.mode}-{params.config_hash()[:10]}"


def _checkpoint_step(path: Path) -> int | None:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        return int(ckpt.get("global_step", 0))
    except Exception:  # an unreadable or partly written checkpoint: train from scratch
        return None


@task(name="train-model", cache_key_fn=_train_key, **TASK_OPTIONS)
def train_model(
    uri: str,
    digest: str,
    params: TrainParams,
    validation: dict[str, Any],
    parent_run_id: str | None,
) -> dict[str, Any]:
    """Train (resuming from ``last.ckpt`` after a crash) and log the run and model to MLflow."""
    run_dir = _run_dir(digest, params)
    last = run_dir / "checkpoints" / "last.ckpt"
    resumed_from = _checkpoint_step(last) if last.exists() else None
    config = params.to_config(out=str(run_dir), resume=resumed_from is not None)
    logger = get_run_logger()
    if resumed_from is not None:
        logger.info("resuming training from %s (step %s)", last, resumed_from)
    where = "a child process (DDP)" if params.devices > 1 or params.strategy == "ddp" else "here"
    logger.info("training %s for %d steps in %s; run dir %s", params.mode, params.max_steps,
                where, run_dir)  # fmt: skip
    with heartbeat("training"):
        result = train(uri, config)
    run_id = tracking.log_training(asdict(result), asdict(config), validation, parent_run_id)
    return {
        **asdict(result),
        "run_id": run_id,
        "resumed_from_step": resumed_from,
        "config_hash": params.config_hash(),
    }


def _evaluate_key(ctx: TaskRunContext, p: dict[str, Any]) -> str:
    heldout = p.get("heldout") or {}
    return _key(
        "evaluate",
        p["model"]["run_id"],
        p["uri"],
        p["digest"],
        p["split"],
        p["alpha"],
        p["delta"],
        heldout.get("uri", ""),
        heldout.get("digest", ""),
    )


@task(name="evaluate-model", cache_key_fn=_evaluate_key, **TASK_OPTIONS)
def evaluate_model(
    model: dict[str, Any],
    uri: str,
    digest: str,
    split: str,
    alpha: float,
    delta: float,
    heldout: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Evaluate, certify the trained model with the abstention policy the evaluation certified
    for ``alpha`` at confidence ``1 - delta``
    (a new served folder: the cached training output is never modified), and only then log
    the served model: what the gate reads is what is served. ``heldout``: the held-out-phrasing
    twin of the dataset (uri, digest), answered under the same policy."""
    with heartbeat("evaluation"):
        report = evaluate(
            model["model_dir"],
            uri,
            split,
            risk=alpha,
            confidence=1.0 - delta,
            heldout_uri=heldout["uri"] if heldout else None,
        )
    path = Path(model["run_dir"]) / "eval" / f"{digest[:16]}-{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    path.write_text(json.dumps(data, indent=2))
    tracking.log_evaluation(model["run_id"], report)
    evidence = {"report_digest": stable_hash(data), "dataset_digest": digest, "split": split}
    served = certify(
        model["model_dir"],
        report.abstain_threshold,
        evidence,
        report.abstain_score,
        report.risk,
        report.novelty_limit,
    )
    return {
        "model_uri": tracking.log_served_model(model["run_id"], str(served)),
        "served_dir": str(served),
        "report_path": str(path),
        "report_digest": stable_hash(data),
        "dataset_uri": uri,
        "dataset_digest": digest,
        "split": split,
        "headline": report.headline(),
        "guarantee": report.guarantee,
    }


def _register_key(ctx: TaskRunContext, p: dict[str, Any]) -> str:
    return _key("register", p["evaluation"]["model_uri"], p["evaluation"]["report_digest"])


@task(name="register-challenger", cache_key_fn=_register_key, **TASK_OPTIONS)
def register_model(
    model: dict[str, Any], evaluation: dict[str, Any], validation: dict[str, Any]
) -> int:
    version = register_challenger(
        evaluation["model_uri"],
        model["run_id"],
        {
            "validation_status": validation["status"],
            "dataset_uri": model["dataset_uri"],
            "dataset_digest": model["dataset_digest"],
            "suite_hash": validation.get("suite_hash", ""),
            "train_config_hash": model["config_hash"],
        },
    )
    record_evaluation(version, json.loads(Path(evaluation["report_path"]).read_text()))
    return version


def _promote_key(ctx: TaskRunContext, p: dict[str, Any]) -> str:
    return _key("promote", p["version"], p["evaluation"]["report_digest"])


@task(name="promote-challenger", cache_key_fn=_promote_key, **TASK_OPTIONS)
def promote_model(version: int, evaluation: dict[str, Any]) -> dict[str, Any]:
    with heartbeat("promotion gate"):
        decision = promote(version, evaluate=evaluate, eval_dataset=evaluation["dataset_uri"])
    return asdict(decision)


@task(name="summarise", cache_policy=NO_CACHE, persist_result=False)
def registry_rows() -> list[dict[str, Any]]:
    return registry_table()
