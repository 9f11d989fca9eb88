"""The Prefect flows: ``generate``, ``validate``, ``train``, ``evaluate``, ``promote``, ``refresh``
and ``pipeline`` (all of them, in order).

Orchestration only. Every stage is a plain function in ``worldgen``, ``validation``,
``models`` or ``registry``; ``flows.tasks`` makes each a task that

* takes and returns *references* (dataset URI + digest, model directory + MLflow model URI,
  report path), never frames or tensors;
* persists its result and is cached on a key built from those references and a hash of its
  config, so re-running a finished pipeline does no work and re-running after a crash starts
  at the stage that failed (training then resumes from the run's ``last.ckpt``);
* retries on I/O errors only (a rejected dataset or a bad config is not retried).

Parameters are validated by pydantic (:class:`~flows.params.PipelineParams`) before any task
runs. Each flow run leaves keyed Prefect artifacts (markdown summary, tables, built by
``flows.summary``) that version over time. This module holds the flows and ``main``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_image_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from flows.params import DEFAULT_N, FAILURE_COLUMNS, PipelineParams, TrainParams, check_params
from flows.summary import summary_markdown, summary_rows, validation_markdown
from flows.tasks import (
    RejectedDataset,
    dask_task_runner,
    evaluate_model,
    generate_dataset,
    promote_model,
    register_model,
    registry_rows,
    run_task,
    train_model,
    validate_dataset,
)
from infra.errors import UserError
from infra.settings import get_settings
from models.abstain import risk_target
from registry import tracking
from validation.acceptance import require_accepted, verdict
from worldgen.dataset import HELD_OUT, IN_FAMILY, DatasetError, read_manifest

# ------------------------------------------------------------------------------ flows


def _expect_digest(uri: str, actual: str, expected: str | None) -> None:
    """A stage handed a reference refuses a dataset that changed since the reference was made."""
    if expected and expected != actual:
        raise DatasetError(f"{uri}: digest {actual[:12]} != expected {expected[:12]}")


def _parent_run(params: PipelineParams) -> str | None:
    return tracking.start_pipeline_run(params.model_dump())


@flow(name="generate-on-dask", log_prints=True)
def generate_on_dask(
    domains: list[str], n: int, seed: int, out: str, shards: int, phrasing: str = IN_FAMILY
) -> tuple[dict[str, str], bool]:
    """The dataset task with its shards on Dask (task runner set by ``generate``)."""
    result: tuple[dict[str, str], bool] = run_task(
        generate_dataset,
        domains=domains,
        n=n,
        seed=seed,
        out=out,
        shards=shards,
        phrasing=phrasing,
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
    phrasing: str = IN_FAMILY,
) -> dict[str, Any]:
    """Generate (or reuse) a dataset; returns its reference. ``dask`` (or the setting
    ``VERACITY_DASK_ADDRESS``) runs the shards on a Dask cluster; the digest is the same.
    ``phrasing="held-out"`` writes the same records in the seed's held-out forms only."""
    p = check_params(
        domains=domains,
        n=n,
        seed=seed,
        out=out,
        shards=shards,
        dask=dask or get_settings().dask_address,
    )
    args: dict[str, Any] = {
        "domains": p.domains,
        "n": p.n,
        "seed": p.seed,
        "out": p.dataset_out() if phrasing == IN_FAMILY else p.heldout_out(),
        "shards": p.shards,
        "phrasing": phrasing,
    }
    if p.dask:
        runner = dask_task_runner(p.dask)
        ref, cached = generate_on_dask.with_options(task_runner=runner)(**args)
    else:
        ref, cached = run_task(generate_dataset, **args)
    get_run_logger().info(
        "dataset %s digest %s%s", ref["uri"], ref["digest"][:12], " (cached)" if cached else ""
    )
    return {**ref, "cached": cached}


@flow(name="validate", log_prints=True)
def validate(uri: str, digest: str | None = None) -> dict[str, Any]:
    """Run the consistency gate; stops (``DataQualityError``) when the dataset is rejected."""
    actual = str(read_manifest(uri)["digest"])
    _expect_digest(uri, actual, digest)
    report, cached = run_task(validate_dataset, uri=uri, digest=actual)
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
    params = params or TrainParams()
    verdict = require_accepted(uri)
    _expect_digest(uri, verdict.digest, digest)
    model, cached = run_task(
        train_model,
        uri=uri,
        digest=verdict.digest,
        params=params,
        validation=verdict.as_tags(),
        parent_run_id=parent_run_id,
    )
    return {**model, "cached": cached}


@flow(name="evaluate", log_prints=True)
def evaluate(
    model: dict[str, Any],
    uri: str,
    split: str = "test",
    risk: float | None = None,
    confidence: float | None = None,
    heldout_uri: str | None = None,
) -> dict[str, Any]:
    """Score a trained model against the world model's ground truth, its abstention certified
    for ``risk`` at ``confidence`` (None: the settings'); ``heldout_uri``: the dataset's
    held-out-phrasing twin, scored too."""
    if split not in ("test", "validation"):
        raise UserError(f"split must be test or validation, got {split!r}")
    alpha, delta = risk_target(risk, confidence)
    digest = require_accepted(uri).digest
    heldout = None
    if heldout_uri is not None:
        heldout = {"uri": heldout_uri, "digest": require_accepted(heldout_uri).digest}
    result, cached = run_task(
        evaluate_model,
        model=model,
        uri=uri,
        digest=digest,
        split=split,
        alpha=alpha,
        delta=delta,
        heldout=heldout,
    )
    create_table_artifact(
        key="veracity-evaluation",
        table=[{"metric": k, "value": round(float(v), 6)} for k, v in result["headline"].items()],
        description=f"evaluation of {result['model_uri']} on {uri} ({split})",
    )
    return {**result, "cached": cached}


@flow(name="promote", log_prints=True)
def promote(model: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
    """Register the model as challenger and let the registry's gate decide (which refuses a
    model whose dataset is no longer accepted: the status travels as a tag)."""
    uri = model["dataset_uri"]
    status, accepted = verdict(uri)  # one re-hash of the dataset, not two
    validation = {"status": status, "suite_hash": accepted.suite_hash if accepted else ""}
    version, reg_cached = run_task(
        register_model, model=model, evaluation=evaluation, validation=validation
    )
    decision, cached = run_task(promote_model, version=version, evaluation=evaluation)
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
    risk: float | None = None,
    confidence: float | None = None,
) -> dict[str, Any]:
    """generate -> validate -> train -> evaluate -> register + promote, with a run summary."""
    seed = date_seed() if seed is None else seed
    p = check_params(
        domains=domains,
        n=n,
        seed=seed,
        out=out,
        train=train_params,
        eval_split=eval_split,
        risk=risk,
        confidence=confidence,
        promote=gate,
        shards=shards,
        dask=dask,
    )
    logger = get_run_logger()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    out_: dict[str, Any] = {"params": p.model_dump(), "stages": {}}

    def stage(name: str, value: dict[str, Any], start: float) -> None:
        timings[name] = round(time.perf_counter() - start, 2)
        out_["stages"][name] = {"cached": bool(value.get("cached")), "seconds": timings[name]}
        logger.info(
            "stage %s %s in %.1f s",
            name,
            "from cache" if value.get("cached") else "done",
            timings[name],
        )

    s = time.perf_counter()
    logger.info("stage 1/5 generate: %d records per domain of %s", p.n, ", ".join(p.domains))
    args: dict[str, Any] = {
        "domains": p.domains,
        "n": p.n,
        "seed": p.seed,
        "shards": p.shards,
        "dask": p.dask,
    }
    ref = generate(**args, out=p.dataset_out())
    twin = generate(**args, out=p.dataset_out(), phrasing=HELD_OUT)
    stage("generate", {"cached": ref["cached"] and twin["cached"]}, s)
    out_["dataset"], out_["heldout_dataset"] = ref, twin

    s = time.perf_counter()
    logger.info("stage 2/5 validate %s and its held-out-phrasing twin", ref["uri"])
    try:
        report = validate(ref["uri"], ref["digest"])
        twin_report = validate(twin["uri"], twin["digest"])
    except RejectedDataset as exc:
        create_markdown_artifact(
            key="veracity-run-summary",
            markdown=summary_markdown({**out_, "validation": exc.report}),
            description="pipeline stopped: dataset rejected",
        )
        raise
    stage("validate", {"cached": report["cached"] and twin_report["cached"]}, s)
    out_["validation"] = _brief_validation(report)

    parent = _parent_run(p)
    out_["mlflow_parent_run"] = parent
    s = time.perf_counter()
    logger.info("stage 3/5 train %s, %d steps", p.train.mode, p.train.max_steps)
    model = train(ref["uri"], ref["digest"], p.train, parent)
    stage("train", model, s)
    out_["model"] = {
        k: model[k]
        for k in ("model_dir", "run_dir", "run_id", "steps", "resumed_from_step", "cached")
    }

    s = time.perf_counter()
    logger.info("stage 4/5 evaluate on the %s split", p.eval_split)
    evaluation = evaluate(model, ref["uri"], p.eval_split, p.risk, p.confidence, twin["uri"])
    stage("evaluate", evaluation, s)
    out_["evaluation"] = evaluation
    out_["model"]["model_uri"] = evaluation["model_uri"]  # logged once its threshold is fixed
    out_["plots"] = {
        name: tracking.artifact_url(model["run_id"], tracking.plot_path(p.eval_split, name))
        for name in tracking.EVAL_PLOTS
    }

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
    for name, url in out_["plots"].items():
        create_image_artifact(
            image_url=url,
            key=f"veracity-{name.replace('_', '-')}",
            description=f"{name.replace('_', ' ')} of the {p.eval_split} split (from the MLflow run)",
        )
    create_table_artifact(
        key="veracity-run-metrics",
        table=summary_rows(out_),
        description="headline metrics and gate decision",
    )
    create_table_artifact(
        key="veracity-run-stages",
        table=[{"stage": k, **v} for k, v in out_["stages"].items()],
        description="stages: seconds and whether they came from the cache",
    )
    return out_


def _run_url(run_id: str) -> str:
    return tracking.ui_url(run_id)


def _finish_parent(parent: str | None, result: dict[str, Any]) -> None:
    if parent:
        tracking.finish_pipeline_run(parent, summary_rows(result))


def main(argv: list[str]) -> None:
    """``python -m flows.pipeline '{"n": 200, ...}' [result.json]``: one pipeline run."""
    args = json.loads(argv[0]) if argv else {}
    result = pipeline(**args)
    text = json.dumps(result, indent=2, default=str)
    if len(argv) > 1:
        Path(argv[1]).write_text(text)
    else:
        sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
