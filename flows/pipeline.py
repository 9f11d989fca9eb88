"""The Prefect flows: ``generate``, ``validate``, ``train``, ``evaluate``, ``promote``, ``refresh``
and ``pipeline`` (all of them, in order).

Orchestration only. Every stage is a plain function in ``worldgen``, ``validation``,
``models`` or ``registry``; here each becomes a task that

* takes and returns *references* (dataset URI + digest, model directory + MLflow model URI,
  report path), never frames or tensors;
* persists its result and is cached on a key built from those references and a hash of its
  config, so re-running a finished pipeline does no work and re-running after a crash starts
  at the stage that failed (training then resumes from the run's ``last.ckpt``);
* retries on I/O errors only (a rejected dataset or a bad config is not retried).

Parameters are validated by pydantic (:class:`PipelineParams`) before any task runs. Each flow
run leaves keyed Prefect artifacts (markdown summary, tables) that version over time.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.states import State
from pydantic import BaseModel, ConfigDict, Field, field_validator

from infra.settings import get_settings
from models.sizes import DEFAULT_MODEL

ALL_DOMAINS = ("medical", "legal", "financial")
# A small model that trains, evaluates and promotes in under ten minutes on 2 CPU cores. The data
# is cheap (seconds) and plentiful: with 300 records per domain the model memorised its training
# documents (train loss 0.002) and answered 0.66 of held-out questions; with 10000 it sees each
# document about once and learns the task (README has today's accuracy). 1750 steps keep the job
# under 10 minutes.
DEFAULT_N = 10000
DEFAULT_STEPS = 1750
DEFAULT_BATCH = 16
# Version of the cache keys: bump when a stage's meaning changes under the same inputs.
KEY_VERSION = "8"  # 2: packed QA, value slots, derivations; 3: evaluation samples per domain;
# 4: unknown rule answers mark what is unstated; labels are pointers; stages and indications derive;
# 5: facts of one kind may share a sentence ("A and B were x and y, respectively");
# 6: unknown only where the document does not decide the answer (Kleene gaps, revealed_by);
# 7: the ruling and the elements derive (elements(...), liable(...));
# 8: findings that fail every claim give the award away (elements() decides the reveal)
FAILURE_COLUMNS = ("domain", "batch", "check", "expectation", "unexpected_count", "error")
IO_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, ConnectionError)


# ------------------------------------------------------------------------------ parameters


class TrainParams(BaseModel):
    """What ``models.train.TrainConfig`` needs; checked here so a bad value fails at once."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["dense", "apr", "all", "random"] = "apr"
    max_steps: int = Field(default=DEFAULT_STEPS, ge=1, le=1_000_000)
    batch_size: int = Field(default=DEFAULT_BATCH, ge=1, le=4096)
    lr: float = Field(default=3e-3, gt=0, lt=1)
    precision: Literal["32-true", "bf16-mixed", "16-mixed"] = "bf16-mixed"
    devices: int = Field(default=1, ge=1, le=64)
    strategy: Literal["auto", "ddp"] = "auto"
    seed: int = Field(default=0, ge=0)
    checkpoint_every: int = Field(default=25, ge=1)
    val_check_interval: int = Field(default=500, ge=1)
    model: dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_MODEL))

    def config_hash(self) -> str:
        return _hash(self.model_dump())


class PipelineParams(BaseModel):
    """Every knob of the pipeline; the flows build this first, so bad input does no work."""

    model_config = ConfigDict(extra="forbid")

    domains: list[str] = Field(default_factory=lambda: list(ALL_DOMAINS), min_length=1)
    n: int = Field(default=DEFAULT_N, ge=20, le=2_000_000, description="records per domain")
    seed: int = Field(default=0, ge=0, description="dataset seed")
    out: str | None = Field(default=None, description="dataset folder or s3:// prefix")
    train: TrainParams = Field(default_factory=lambda: TrainParams())
    eval_split: Literal["test", "validation"] = "test"
    promote: bool = True
    shards: int = Field(default=1, ge=1, le=4096, description="generation shards (same digest)")
    dask: str | None = Field(
        default=None,
        pattern=r"^(local|(tcp|tls)://[A-Za-z0-9._-]+:[0-9]{1,5})$",
        description="run generation shards on Dask: a scheduler address, or 'local'",
    )

    @field_validator("domains")
    @classmethod
    def _known_domains(cls, value: list[str]) -> list[str]:
        unknown = [d for d in value if d not in ALL_DOMAINS]
        if unknown:
            raise ValueError(f"unknown domain(s) {unknown}; choose from {', '.join(ALL_DOMAINS)}")
        if len(set(value)) != len(value):
            raise ValueError(f"domains repeat: {value}")
        return value

    def dataset_out(self) -> str:
        if self.out:
            return self.out
        from infra.storage import join

        tag = "" if self.domains == list(ALL_DOMAINS) else "-" + "-".join(self.domains)
        return join(get_settings().datasets_root, f"ds-seed{self.seed}-n{self.n}{tag}")


def check_params(**values: Any) -> PipelineParams:
    """``PipelineParams`` from flow/CLI arguments (``None`` means the default)."""
    train = values.pop("train", None) or {}
    clean = {k: v for k, v in values.items() if v is not None}
    return PipelineParams(**clean, train=TrainParams(**train))


# ------------------------------------------------------------------------------ helpers


class RejectedDataset(RuntimeError):
    """The dataset failed validation: the pipeline stops before training."""

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__(report["summary"])
        self.report = report


def _hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _key(stage: str, *parts: Any) -> str:
    return f"veracity-{stage}-{_hash([KEY_VERSION, stage, *parts])[:40]}"


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
    try:
        from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return False
    if isinstance(exc, ConnectionError | HTTPClientError):
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


def _run_task(fn: Any, **kwargs: Any) -> tuple[Any, bool]:
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
    return _key("generate", sorted(p["domains"]), p["n"], p["seed"], p["out"])


@task(name="generate-shard", cache_policy=NO_CACHE, **TASK_OPTIONS)
def generate_shard(fn: Any, plan: Any) -> dict[str, Any]:
    """One shard of a dataset (``worldgen.dataset.run_plan``), on the flow's task runner."""
    return dict(fn(plan))


def _task_runner_mapper(fn: Any, plans: Any) -> Any:
    """A ``worldgen.dataset.Mapper`` that runs shards as tasks on the current flow's task runner
    (threads by default, Dask workers under ``DaskTaskRunner``), in plan order."""
    from prefect import unmapped

    futures = generate_shard.map(unmapped(fn), list(plans))
    return iter([f.result() for f in futures])


def dask_task_runner(address: str) -> Any:
    """``DaskTaskRunner`` on a scheduler address, or a 2-worker ``LocalCluster`` for 'local'."""
    from prefect_dask import DaskTaskRunner

    if address == "local":
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True,
                            "host": "127.0.0.1", "dashboard_address": None},
        )  # fmt: skip
    return DaskTaskRunner(address=address)


@task(name="generate-dataset", cache_key_fn=_generate_key, **TASK_OPTIONS)
def generate_dataset(
    domains: list[str], n: int, seed: int, out: str, shards: int = 1
) -> dict[str, str]:
    from infra import storage
    from worldgen.dataset import DatasetError, read_manifest
    from worldgen.dataset import generate as run

    if storage.exists(storage.join(out, "manifest.json")):
        m = read_manifest(out)
        if (
            m.get("seed") != seed
            or m.get("n_per_domain") != n
            or sorted(m["domains"]) != sorted(domains)
        ):
            raise DatasetError(f"{out} already holds another dataset; choose a new out")
        get_run_logger().info("reusing %s (same seed and size give the same dataset)", out)
        return {"uri": out, "digest": str(m["digest"])}
    mapper = _task_runner_mapper if shards > 1 else None
    ref = run(domains, n, seed, out, shards=shards, mapper=mapper)
    return {"uri": ref.uri, "digest": ref.digest}


def _validate_key(ctx: TaskRunContext, p: dict[str, Any]) -> str:
    return _key("validate", p["uri"], p["digest"])


@task(name="validate-dataset", cache_key_fn=_validate_key, **TASK_OPTIONS)
def validate_dataset(uri: str, digest: str) -> dict[str, Any]:
    from validation import validate as run
    from worldgen.dataset import DatasetRef

    report = run(DatasetRef(uri, digest))
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
    import torch

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
    from dataclasses import asdict

    from models.train import TrainConfig
    from models.train import train as run
    from registry import tracking

    run_dir = _run_dir(digest, params)
    last = run_dir / "checkpoints" / "last.ckpt"
    resumed_from = _checkpoint_step(last) if last.exists() else None
    config = TrainConfig(
        **params.model_dump(exclude={"model"}),
        model=dict(params.model),
        out=str(run_dir),
        resume=resumed_from is not None,
    )
    logger = get_run_logger()
    if resumed_from is not None:
        logger.info("resuming training from %s (step %s)", last, resumed_from)
    where = "a child process (DDP)" if params.devices > 1 or params.strategy == "ddp" else "here"
    logger.info("training %s for %d steps in %s; run dir %s", params.mode, params.max_steps,
                where, run_dir)  # fmt: skip
    with heartbeat("training"):
        result = run(uri, config)
    run_id, model_uri = tracking.log_training(
        asdict(result), asdict(config), validation, parent_run_id
    )
    return {
        **asdict(result),
        "run_id": run_id,
        "model_uri": model_uri,
        "resumed_from_step": resumed_from,
        "config_hash": params.config_hash(),
    }


def _evaluate_key(ctx: TaskRunContext, p: dict[str, Any]) -> str:
    return _key("evaluate", p["model"]["model_uri"], p["uri"], p["digest"], p["split"])


@task(name="evaluate-model", cache_key_fn=_evaluate_key, **TASK_OPTIONS)
def evaluate_model(model: dict[str, Any], uri: str, digest: str, split: str) -> dict[str, Any]:
    from models.evaluate import evaluate as run
    from registry import tracking

    with heartbeat("evaluation"):
        report = run(model["model_dir"], uri, split=split)
    path = Path(model["run_dir"]) / "eval" / f"{digest[:16]}-{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    path.write_text(json.dumps(data, indent=2))
    tracking.log_evaluation(model["run_id"], report)
    return {
        "report_path": str(path),
        "report_digest": _hash(data),
        "dataset_uri": uri,
        "dataset_digest": digest,
        "split": split,
        "headline": report.headline(),
    }


def _register_key(ctx: TaskRunContext, p: dict[str, Any]) -> str:
    return _key("register", p["model"]["model_uri"], p["evaluation"]["report_digest"])


@task(name="register-challenger", cache_key_fn=_register_key, **TASK_OPTIONS)
def register_model(
    model: dict[str, Any], evaluation: dict[str, Any], validation: dict[str, Any]
) -> int:
    from registry import record_evaluation, register_challenger

    version = register_challenger(
        model["model_uri"],
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
    from dataclasses import asdict

    from models.evaluate import evaluate as evaluator
    from registry import promote as run

    with heartbeat("promotion gate"):
        decision = run(version, evaluate=evaluator, eval_dataset=evaluation["dataset_uri"])
    return asdict(decision)


@task(name="summarise", cache_policy=NO_CACHE, persist_result=False)
def registry_rows() -> list[dict[str, Any]]:
    from registry import registry_table

    return registry_table()


# ------------------------------------------------------------------------------ flows


def _parent_run(params: PipelineParams) -> str | None:
    from registry import tracking

    return tracking.start_pipeline_run(params.model_dump())


@flow(name="generate-on-dask", log_prints=True)
def generate_on_dask(
    domains: list[str], n: int, seed: int, out: str, shards: int
) -> tuple[dict[str, str], bool]:
    """The dataset task with its shards on Dask (task runner set by ``generate``)."""
    result: tuple[dict[str, str], bool] = _run_task(
        generate_dataset, domains=domains, n=n, seed=seed, out=out, shards=shards
    )
    return result


@flow(name="generate", log_prints=True)
def generate(
    domains: list[str] | None = None,
    n: int = DEFAULT_N,
    seed: int = 0,
    out: str | None = None,
    shards: int = 1,
    dask: str | None = None,
) -> dict[str, Any]:
    """Generate (or reuse) a dataset; returns its reference. ``dask`` (or the setting
    ``VERACITY_DASK_ADDRESS``) runs the shards on a Dask cluster; the digest is the same."""
    p = check_params(domains=domains, n=n, seed=seed, out=out, shards=shards,
                     dask=dask or get_settings().dask_address)  # fmt: skip
    args: dict[str, Any] = {"domains": p.domains, "n": p.n, "seed": p.seed, "out": p.dataset_out(),
            "shards": p.shards}  # fmt: skip
    if p.dask:
        runner = dask_task_runner(p.dask)
        ref, cached = generate_on_dask.with_options(task_runner=runner)(**args)
    else:
        ref, cached = _run_task(generate_dataset, **args)
    get_run_logger().info("dataset %s digest %s%s", ref["uri"], ref["digest"][:12],
                          " (cached)" if cached else "")  # fmt: skip
    return {**ref, "cached": cached}


@flow(name="validate", log_prints=True)
def validate(uri: str, digest: str | None = None) -> dict[str, Any]:
    """Run the consistency gate; stops (``DataQualityError``) when the dataset is rejected."""
    from worldgen.dataset import read_manifest

    actual = str(read_manifest(uri)["digest"])
    if digest and digest != actual:
        raise ValueError(f"{uri}: digest {actual[:12]} != expected {digest[:12]}")
    report, cached = _run_task(validate_dataset, uri=uri, digest=actual)
    create_markdown_artifact(
        key="veracity-validation",
        markdown=validation_markdown(report),
        description=f"validation of {uri}",
    )
    if report["failures"]:
        create_table_artifact(
            key="veracity-validation-failures",
            table=[{k: f.get(k) for k in FAILURE_COLUMNS} for f in report["failures"]],
            description=f"failing checks on {uri}",
        )
    if not report["success"]:
        get_run_logger().error(report["summary"])
        raise RejectedDataset(report)
    return {**report, "cached": cached}


@flow(name="train", log_prints=True)
def train(
    uri: str,
    digest: str | None = None,
    params: TrainParams | None = None,
    parent_run_id: str | None = None,
) -> dict[str, Any]:
    """Train on a validated dataset (refuses anything the gate did not accept)."""
    from validation.gate import read_sidecar
    from worldgen.dataset import read_manifest

    params = params or TrainParams()
    actual = str(read_manifest(uri)["digest"])
    if digest and digest != actual:
        raise ValueError(f"{uri}: digest {actual[:12]} != expected {digest[:12]}")
    side = read_sidecar(uri) or {}
    status = side.get("status") if side.get("digest") == actual else "unvalidated"
    if status != "accepted":
        raise RejectedDataset({"summary": f"{uri} is {status}, not accepted: run validate first"})
    validation = {"status": status, "suite_hash": side.get("suite_hash", ""),
                  "result_id": f"{actual[:12]}-{str(side.get('suite_hash', ''))[:12]}",
                  "data_docs": side.get("data_docs", ""), "success": True}  # fmt: skip
    model, cached = _run_task(
        train_model,
        uri=uri,
        digest=actual,
        params=params,
        validation=validation,
        parent_run_id=parent_run_id,
    )
    return {**model, "cached": cached}


@flow(name="evaluate", log_prints=True)
def evaluate(model: dict[str, Any], uri: str, split: str = "test") -> dict[str, Any]:
    """Score a trained model against the world model's ground truth."""
    from worldgen.dataset import read_manifest

    if split not in ("test", "validation"):
        raise ValueError(f"split must be test or validation, got {split!r}")
    digest = str(read_manifest(uri)["digest"])
    result, cached = _run_task(evaluate_model, model=model, uri=uri, digest=digest, split=split)
    create_table_artifact(
        key="veracity-evaluation",
        table=[{"metric": k, "value": round(float(v), 6)} for k, v in result["headline"].items()],
        description=f"evaluation of {model['model_uri']} on {uri} ({split})",
    )
    return {**result, "cached": cached}


@flow(name="promote", log_prints=True)
def promote(model: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
    """Register the model as challenger and let the registry's gate decide."""
    from validation.gate import read_sidecar

    side = read_sidecar(model["dataset_uri"]) or {}
    validation = {"status": side.get("status", "unvalidated"),
                  "suite_hash": side.get("suite_hash", "")}  # fmt: skip
    version, reg_cached = _run_task(
        register_model, model=model, evaluation=evaluation, validation=validation
    )
    decision, cached = _run_task(promote_model, version=version, evaluation=evaluation)
    rows = registry_rows()
    create_table_artifact(
        key="veracity-registry",
        table=[
            {k: (",".join(v) if isinstance(v, list) else v) for k, v in r.items()} for r in rows
        ],
        description="versions of veracity-apr after this run",
    )
    return {"version": version, "decision": decision, "cached": cached and reg_cached}


@flow(name="refresh", log_prints=True)
def refresh(
    domains: list[str] | None = None, n: int = DEFAULT_N, seed: int | None = None
) -> dict[str, Any]:
    """Nightly: a fresh dataset (seed defaults to today's date) and its validation."""
    seed = date_seed() if seed is None else seed
    ref = generate(domains=domains, n=n, seed=seed)
    report = validate(ref["uri"], ref["digest"])
    return {"dataset": ref, "validation": _brief_validation(report)}


def date_seed() -> int:
    """Scheduled runs without a seed use today's date: one dataset per day."""
    return int(time.strftime("%Y%m%d"))


def _brief_validation(report: dict[str, Any]) -> dict[str, Any]:
    keep = ("status", "success", "suite_hash", "n_expectations", "rows", "data_docs", "cached")
    return {k: report.get(k) for k in keep}


@flow(name="pipeline", log_prints=True)
def pipeline(
    domains: list[str] | None = None,
    n: int = DEFAULT_N,
    seed: int | None = 0,
    out: str | None = None,
    train_params: dict[str, Any] | None = None,
    eval_split: str = "test",
    gate: bool = True,
    shards: int = 1,
    dask: str | None = None,
) -> dict[str, Any]:
    """generate -> validate -> train -> evaluate -> register + promote, with a run summary."""
    seed = date_seed() if seed is None else seed
    p = check_params(domains=domains, n=n, seed=seed, out=out, train=train_params,
                     eval_split=eval_split, promote=gate, shards=shards, dask=dask)  # fmt: skip
    logger = get_run_logger()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    out_: dict[str, Any] = {"params": p.model_dump(), "stages": {}}

    def stage(name: str, value: dict[str, Any], start: float) -> None:
        timings[name] = round(time.perf_counter() - start, 2)
        out_["stages"][name] = {"cached": bool(value.get("cached")), "seconds": timings[name]}
        logger.info("stage %s %s in %.1f s", name,
                    "from cache" if value.get("cached") else "done", timings[name])  # fmt: skip

    s = time.perf_counter()
    logger.info("stage 1/5 generate: %d records per domain of %s", p.n, ", ".join(p.domains))
    ref = generate(domains=p.domains, n=p.n, seed=p.seed, out=p.dataset_out(), shards=p.shards,
                   dask=p.dask)  # fmt: skip
    stage("generate", ref, s)
    out_["dataset"] = ref

    s = time.perf_counter()
    logger.info("stage 2/5 validate %s", ref["uri"])
    try:
        report = validate(ref["uri"], ref["digest"])
    except RejectedDataset as exc:
        create_markdown_artifact(
            key="veracity-run-summary",
            markdown=summary_markdown({**out_, "validation": exc.report}),
            description="pipeline stopped: dataset rejected",
        )
        raise
    stage("validate", report, s)
    out_["validation"] = _brief_validation(report)

    parent = _parent_run(p)
    out_["mlflow_parent_run"] = parent
    s = time.perf_counter()
    logger.info("stage 3/5 train %s, %d steps", p.train.mode, p.train.max_steps)
    model = train(ref["uri"], ref["digest"], p.train, parent)
    stage("train", model, s)
    out_["model"] = {k: model[k] for k in ("model_uri", "model_dir", "run_dir", "run_id",
                                           "steps", "resumed_from_step", "cached")}  # fmt: skip

    s = time.perf_counter()
    logger.info("stage 4/5 evaluate on the %s split", p.eval_split)
    evaluation = evaluate(model, ref["uri"], p.eval_split)
    stage("evaluate", evaluation, s)
    out_["evaluation"] = evaluation

    if p.promote:
        s = time.perf_counter()
        logger.info("stage 5/5 register and promote")
        promotion = promote(model, evaluation)
        stage("promote", promotion, s)
        out_["promotion"] = promotion
    out_["seconds"] = round(time.perf_counter() - t0, 2)
    out_["mlflow_run_url"] = _run_url(model["run_id"])
    _finish_parent(parent, out_)
    create_markdown_artifact(
        key="veracity-run-summary",
        markdown=summary_markdown(out_),
        description="what this pipeline run produced",
    )
    create_table_artifact(key="veracity-run-metrics", table=summary_rows(out_),
                          description="headline metrics and gate decision")  # fmt: skip
    create_table_artifact(
        key="veracity-run-stages",
        table=[{"stage": k, **v} for k, v in out_["stages"].items()],
        description="stages: seconds and whether they came from the cache",
    )
    return out_


def _run_url(run_id: str) -> str:
    from registry import tracking

    return tracking.ui_url(run_id)


def _finish_parent(parent: str | None, result: dict[str, Any]) -> None:
    from registry import tracking

    if parent:
        tracking.finish_pipeline_run(parent, summary_rows(result))


# ------------------------------------------------------------------------------ summaries


def summary_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    h = (result.get("evaluation") or {}).get("headline", {})
    decision = ((result.get("promotion") or {}).get("decision")) or {}
    rows: list[dict[str, Any]] = [
        {"metric": "accuracy", "value": _fmt(h.get("accuracy"))},
        {"metric": "hallucination rate", "value": _fmt(h.get("hallucination_rate"))},
        {"metric": "routed fraction", "value": _fmt(h.get("routed_fraction"))},
        {"metric": "abstention rate", "value": _fmt(h.get("abstention_rate"))},
        {"metric": "latency p95 (ms)", "value": _fmt(h.get("latency_p95_ms"), ".1f")},
    ]
    if decision:
        version = (result.get("promotion") or {}).get("version")
        verdict = "PROMOTED" if decision.get("promoted") else "REFUSED"
        rows.append({"metric": "decision", "value": f"{verdict} v{version}"})
        rows.append({"metric": "reason", "value": str(decision.get("reason", ""))})
    return rows


def _fmt(value: Any, spec: str = ".4f") -> str:
    return "-" if value is None else format(float(value), spec)


def validation_markdown(report: dict[str, Any]) -> str:
    verdict = "accepted" if report.get("success") else "**REJECTED**"
    lines = [
        f"# Validation: {verdict}",
        "",
        f"- dataset: `{report.get('uri')}`",
        f"- digest: `{str(report.get('digest', ''))[:16]}`",
        f"- suite hash: `{str(report.get('suite_hash', ''))[:16]}`",
        f"- expectations: {report.get('n_expectations')}, failing: {len(report.get('failures', []))}",
        f"- Data Docs: `{report.get('data_docs')}`",
        "",
        "```text",
        str(report.get("summary", "")),
        "```",
    ]
    return "\n".join(lines)


def summary_markdown(result: dict[str, Any]) -> str:
    ds = result.get("dataset") or {}
    val = result.get("validation") or {}
    model = result.get("model") or {}
    lines = ["# Veracity pipeline run", ""]
    lines += ["## Dataset", f"- URI: `{ds.get('uri')}`", f"- digest: `{ds.get('digest')}`", ""]
    status = val.get("status") or ("accepted" if val.get("success") else "rejected")
    lines += ["## Validation", f"- status: **{status}**",
              f"- suite hash: `{str(val.get('suite_hash', ''))[:16]}`",
              f"- Data Docs: `{val.get('data_docs')}`"]  # fmt: skip
    if val.get("summary") and status != "accepted":
        lines += ["", "```text", str(val["summary"]), "```", "",
                  "Stopped before training: nothing was trained or registered."]  # fmt: skip
        return "\n".join(lines)
    lines += ["", "## Model", f"- model: `{model.get('model_uri')}`",
              f"- steps: {model.get('steps')}"
              + (f" (resumed from step {model['resumed_from_step']})"
                 if model.get("resumed_from_step") is not None else ""),
              f"- MLflow run: {result.get('mlflow_run_url')}", ""]  # fmt: skip
    lines += ["## Metrics and decision", "", "| metric | value |", "|---|---|"]
    lines += [f"| {r['metric']} | {r['value']} |" for r in summary_rows(result)]
    lines += ["", "## Stages", "", "| stage | seconds | from cache |", "|---|---|---|"]
    lines += [f"| {k} | {v['seconds']} | {'yes' if v['cached'] else 'no'} |"
              for k, v in result.get("stages", {}).items()]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    """``python -m flows.pipeline '{"n": 200, ...}' [result.json]``: one pipeline run."""
    import sys

    args = json.loads(argv[0]) if argv else {}
    result = pipeline(**args)
    text = json.dumps(result, indent=2, default=str)
    if len(argv) > 1:
        Path(argv[1]).write_text(text)
    else:
        sys.stdout.write(text + "\n")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
