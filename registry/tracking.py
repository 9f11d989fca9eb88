"""MLflow tracking: one run per job, a parent run per pipeline with a child run per stage.

Everything a promotion must later justify lands here: the full config as params, the dataset as
an MLflow input with its digest, lineage tags (spec hash, dataset digest, validation result and
suite hash, git commit), metrics, plots and the Data Docs link.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow

from infra.settings import get_settings

EXPERIMENT = "veracity"
SECRET_HINTS = ("password", "secret", "token", "access_key", "credential")


def configure(experiment: str = EXPERIMENT) -> str:
    """Point MLflow at the profile's tracking store; returns the experiment id."""
    mlflow.set_tracking_uri(get_settings().tracking_uri)
    exp = mlflow.set_experiment(experiment)
    return str(exp.experiment_id)


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
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    try:
        source = resolve_dataset_source(uri)
    except Exception:  # an unregistered scheme: record the URI as given
        source = HTTPDatasetSource(url=uri)
    name = Path(uri.rstrip("/")).name or "dataset"
    mlflow.log_input(MetaDataset(source, name=name, digest=manifest["digest"][:32]), context=context)
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
