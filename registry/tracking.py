"""MLflow tracking: one run per job, a parent run per pipeline with a child run per stage.

Everything a promotion must later justify lands here: the full config as params, the dataset as
an MLflow input with its digest, lineage tags (spec hash, dataset digest, validation result and
suite hash, git commit), metrics, plots and the Data Docs link.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import matplotlib.pyplot as plt
import mlflow
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.http_dataset_source import HTTPDatasetSource
from mlflow.data.meta_dataset import MetaDataset

from infra.settings import get_settings
from models import plots
from models.pyfunc import log_model
from registry.client import check_reachable
from worldgen.dataset import read_manifest

EXPERIMENT = "veracity"
SECRET_HINTS = ("password", "secret", "token", "access_key", "credential")


EXPERIMENT_KIND = "mlflow.experimentKind"


def configure(experiment: str = EXPERIMENT) -> str:
    """Point MLflow at the profile's tracking store; returns the experiment id.

    A new experiment keeps its artifacts under the home directory (``<home>/mlartifacts``)
    unless the tracking store is a server, which chooses for itself.
    """
    settings = get_settings()
    check_reachable(settings.tracking_uri)
    mlflow.set_tracking_uri(settings.tracking_uri)
    if mlflow.get_experiment_by_name(experiment) is None and not settings.tracking_uri.startswith(
        ("http://", "https://")
    ):
        with contextlib.suppress(mlflow.exceptions.MlflowException):  # created concurrently
            mlflow.create_experiment(experiment, artifact_location=artifact_root())
    exp = mlflow.set_experiment(experiment)
    if exp.tags.get(EXPERIMENT_KIND) != "custom_model_development":
        # MLflow 3 opens an untagged experiment in its GenAI (traces) view; this is model training
        mlflow.set_experiment_tag(EXPERIMENT_KIND, "custom_model_development")
    return str(exp.experiment_id)


def artifact_root() -> str:
    """Local artifact store for the embedded (SQLite) profile."""
    return (get_settings().home / "mlartifacts").resolve().as_uri()


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config to MLflow params; anything that looks like a credential is dropped."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if any(h in name.lower() for h in SECRET_HINTS):
            continue
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:500]
    return out


@contextmanager
def stage_run(name: str, parent_run_id: str | None = None, **tags: str) -> Iterator[str]:
    """A run for one stage, nested under the pipeline's run when one is given."""
    configure()
    with mlflow.start_run(
        run_name=name,
        parent_run_id=parent_run_id,
        nested=parent_run_id is not None,
        tags={"veracity.stage": name, "git_commit": git_commit(), **tags},
    ) as run:
        yield run.info.run_id


def log_dataset(uri: str, manifest: Mapping[str, Any], context: str = "training") -> None:
    """The dataset as an MLflow input (name, digest, source) plus its lineage tags."""
    try:
        source = resolve_dataset_source(uri)
    except Exception:  # an unregistered scheme: record the URI as given
        source = HTTPDatasetSource(url=uri)
    name = Path(uri.rstrip("/")).name or "dataset"
    dataset = MetaDataset(source, name=name, digest=manifest["digest"][:32])  # type: ignore[abstract]
    mlflow.log_input(dataset, context=context)
    mlflow.set_tags(
        {
            "dataset_uri": uri,
            "dataset_digest": manifest["digest"],
            **{f"spec_hash.{d}": info["spec_hash"] for d, info in manifest["domains"].items()},
        }
    )


def log_validation(report: Mapping[str, Any]) -> None:
    mlflow.set_tags(
        {
            "validation_status": "accepted" if report.get("success") else "rejected",
            "validation_result_id": str(report.get("result_id", "")),
            "suite_hash": str(report.get("suite_hash", "")),
            "data_docs": str(report.get("data_docs", "")),
        }
    )


def log_params(config: Mapping[str, Any]) -> None:
    mlflow.log_params(flatten(config))


def log_metrics(metrics: Mapping[str, float], prefix: str = "") -> None:
    clean = {
        f"{prefix}{k}".replace("/", "_"): float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and v == v  # NaN is not a measurement
    }
    mlflow.log_metrics(clean)


def log_json(data: Any, artifact_file: str) -> None:
    mlflow.log_text(json.dumps(data, indent=2, default=str), artifact_file)


def run_url(run_id: str) -> str:
    run = mlflow.get_run(run_id)
    return f"{get_settings().tracking_uri} experiment {run.info.experiment_id} run {run_id}"


# --- glue for the pipeline flows (plain functions: no Prefect here) ---------------------------

UI_URL = "http://127.0.0.1:5000"


def ui_url(run_id: str, base: str = UI_URL) -> str:
    """The run's page in ``veracity ui`` (the MLflow UI on 127.0.0.1)."""
    run = mlflow.get_run(run_id) if mlflow.get_tracking_uri() else None
    exp = run.info.experiment_id if run else configure()
    return f"{base}/#/experiments/{exp}/runs/{run_id}"


def start_pipeline_run(params: Mapping[str, Any]) -> str:
    """The parent run of one pipeline execution (left open; see ``finish_pipeline_run``)."""
    exp = configure()
    client = mlflow.MlflowClient(get_settings().tracking_uri)
    run = client.create_run(
        exp, run_name="pipeline", tags={"veracity.stage": "pipeline", "git_commit": git_commit()}
    )
    for key, value in flatten(params).items():
        client.log_param(run.info.run_id, key, value)
    return str(run.info.run_id)


def finish_pipeline_run(
    run_id: str, summary: list[dict[str, Any]], status: str = "FINISHED"
) -> None:
    client = mlflow.MlflowClient(get_settings().tracking_uri)
    client.log_dict(run_id, {"summary": summary}, "pipeline_summary.json")
    client.set_terminated(run_id, status)


def log_training(
    result: Mapping[str, Any],
    config: Mapping[str, Any],
    validation: Mapping[str, Any],
    parent_run_id: str | None = None,
) -> str:
    """Log a finished training run (``models.train.TrainResult`` as a dict): params, dataset,
    validation lineage and metrics. Returns the run id; the served model is logged into it by
    ``log_served_model`` once evaluation has fixed its abstention threshold."""
    uri = str(result["dataset_uri"])
    with stage_run("train", parent_run_id) as run_id:
        log_params({k: v for k, v in config.items() if k not in ("out", "resume")})
        log_dataset(uri, read_manifest(uri))
        log_validation(validation)
        log_metrics(result.get("metrics", {}))
        mlflow.log_metrics(
            {"steps": float(result["steps"]), "route_threshold": float(result["route_threshold"])}
        )
        mlflow.set_tag("run_dir", str(result["run_dir"]))
        mlflow.set_tag("base_precision", str(result.get("base_precision", "bf16")))
        if result.get("model_dir"):
            log_base_model(Path(str(result["model_dir"])))
    return run_id


def log_base_model(model_dir: Path) -> None:
    """Lineage of a model fine-tuned from a Hugging Face base (``--base``): where the base
    came from, what it is (its config's hash, its parameter count) and how it was tuned."""
    base = json.loads((model_dir / "config.json").read_text()).get("base")
    if base:
        keys = ("path", "model_type", "config_sha256", "parameters", "tuning")
        mlflow.set_tags({f"base.{k}": str(base.get(k, "")) for k in keys})


def log_served_model(run_id: str, model_dir: str) -> str:
    """The served pyfunc (a LoggedModel with its signature) on its training run; its URI."""
    configure()
    with mlflow.start_run(run_id=run_id):
        return str(log_model(model_dir, name="apr").model_uri)


def log_evaluation(run_id: str, report: Any) -> None:
    """An ``EvalReport`` on its training run: headline metrics, the report, plots."""
    configure()
    split = str(report.split)
    with mlflow.start_run(run_id=run_id):
        log_metrics(report.headline(), prefix=f"{split}_")
        log_json(report.to_dict(), f"eval/{split}-{report.dataset_digest[:16]}.json")
        for name, draw in EVAL_PLOTS.items():
            fig = draw(report)
            mlflow.log_figure(fig, plot_path(split, name))
            plt.close(fig)


# the pictures of an evaluation, logged on its run; the pipeline's summary shows them too
EVAL_PLOTS = {
    "reliability": plots.reliability_diagram,
    "routed_by_kind": plots.routed_by_kind,
    "risk_coverage": plots.risk_coverage,
}


def plot_path(split: str, name: str) -> str:
    return f"eval/{split}-{name}.png"


def artifact_url(run_id: str, path: str, base: str = UI_URL) -> str:
    """A run's artifact as ``veracity ui`` (the MLflow UI) serves it: what a Prefect image
    artifact or a markdown image links to."""
    return f"{base}/get-artifact?{urlencode({'path': path, 'run_uuid': run_id})}"
