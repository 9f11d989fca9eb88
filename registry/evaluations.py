"""The evaluation record store: a version's evaluation reports, kept on its MLflow run.

The registry never evaluates: evaluation reports are plain dicts (``models.evaluate.EvalReport``
``to_dict()``) stored on the version's run as ``eval/report.json`` (the latest) and under
``eval/by_digest/`` (one per evaluation dataset digest), with the key figures as version tags.
The promotion gate reads them to pair the challenger with the champion on the same digest and
records re-evaluations here; the flows record the pipeline's own evaluation. Storing and reading
reports needs only the MLflow client, not the gate's alias and audit machinery, so it lives apart
from ``registry.promotion``.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException

from registry.client import MODEL_NAME, client, model_version
from registry.gate import EvalReportDict, PromotionError, check_report

REPORT_PATH = "eval/report.json"
REPORT_DIR = "eval/by_digest"


def _digest_path(digest: str) -> str:
    return f"{REPORT_DIR}/{re.sub(r'[^A-Za-z0-9._-]', '_', digest)}.json"


def record_evaluation(
    version: int, report: Mapping[str, Any] | Any, model_name: str = MODEL_NAME
) -> EvalReportDict:
    """Log a report to the version's run (``eval/report.json`` + one per digest) and tag it."""
    checked = check_report(report, f"version {version}")
    c = client()
    mv = model_version(c, model_name, version)
    if not mv.run_id:
        raise PromotionError(f"version {version} has no run to store its evaluation in")
    c.log_dict(mv.run_id, dict(checked), REPORT_PATH)
    c.log_dict(mv.run_id, dict(checked), _digest_path(checked["dataset_digest"]))
    for key, value in {
        "eval_digest": checked["dataset_digest"],
        "eval_accuracy": checked["accuracy"],
        "eval_hallucination": checked["hallucination_rate"],
        "eval_latency_p95_ms": checked["latency_p95_ms"],
    }.items():
        c.set_model_version_tag(model_name, str(version), key, str(value))
    return checked


def load_evaluation(
    version: int, digest: str | None = None, model_name: str = MODEL_NAME
) -> EvalReportDict | None:
    """The version's latest report, or its report on ``digest``; None when there is none."""
    c = client()
    mv = model_version(c, model_name, version)
    if not mv.run_id:
        return None
    path = REPORT_PATH if digest is None else _digest_path(digest)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = c.download_artifacts(mv.run_id, path, tmp)
        except (MlflowException, OSError):
            return None
        data = json.loads(Path(local).read_text())
    return check_report(data, f"version {version}")
