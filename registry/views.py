"""Read-only views of the registry for ``veracity registry``: the version table and the audit log.

``registry_table()`` lists each version with its aliases, lineage status, evaluation figures and
last gate decision, all read from MLflow tags; ``recent_decisions()`` reads the audit table. They
change nothing and need none of the gate's machinery (reports, statistics, compare-and-set), so
they live apart from ``registry.promotion``, which writes what they show.
"""

from __future__ import annotations

from typing import Any

from mlflow.exceptions import MlflowException

from registry import audit
from registry.client import MODEL_NAME, client


def registry_table(model_name: str = MODEL_NAME) -> list[dict[str, Any]]:
    """One row per version: aliases, lineage status, key metrics and its last gate decision."""
    c = client()
    try:
        versions = c.search_model_versions(f"name='{model_name}'")
    except MlflowException:
        return []
    aliases: dict[int, list[str]] = {}
    for alias, v in (c.get_registered_model(model_name).aliases if versions else {}).items():
        aliases.setdefault(int(v), []).append(alias)
    rows = []
    for mv in sorted(versions, key=lambda m: int(m.version)):
        t = mv.tags
        rows.append(
            {
                "version": int(mv.version),
                "aliases": sorted(aliases.get(int(mv.version), [])),
                "validation_status": t.get("validation_status"),
                "eval_digest": t.get("eval_digest"),
                "accuracy": t.get("eval_accuracy"),
                "hallucination": t.get("eval_hallucination"),
                "latency_p95_ms": t.get("eval_latency_p95_ms"),
                "decision": t.get("gate.decision"),
                "reason": t.get("gate.reason"),
                "decided_at": t.get("gate.decided_at"),
            }
        )
    return rows


def recent_decisions(limit: int | None = 10, model_name: str = MODEL_NAME) -> list[dict[str, Any]]:
    """The audit table's newest decisions for the model (``None``: every one)."""
    return audit.list_decisions(model_name, limit)
