"""Read-only views of the registry for ``veracity registry``: the version table and the audit log.

``registry_table()`` lists each version with its aliases, lineage status, evaluation figures and
last gate decision, all read from MLflow tags; ``recent_decisions()`` reads the audit table;
``verify_audit()`` checks the audit table's hash chain and the hashes tagged on the versions. They
change nothing and need none of the gate's machinery (reports, statistics, compare-and-set), so
they live apart from ``registry.promotion``, which writes what they show.
"""

from __future__ import annotations

from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from registry import audit
from registry.aliases import alias_problems
from registry.client import MODEL_NAME, client


def _versions(model_name: str) -> list[ModelVersion]:
    """The model's versions, oldest first; none when the model was never registered."""
    try:
        found = client().search_model_versions(f"name='{model_name}'")
    except MlflowException:
        return []
    return sorted(found, key=lambda m: int(m.version))


def registry_table(model_name: str = MODEL_NAME) -> list[dict[str, Any]]:
    """One row per version: aliases, lineage status, key metrics and its last gate decision."""
    c = client()
    versions = _versions(model_name)
    aliases: dict[int, list[str]] = {}
    for alias, v in (c.get_registered_model(model_name).aliases if versions else {}).items():
        aliases.setdefault(int(v), []).append(alias)
    rows = []
    for mv in versions:
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


def verify_audit(model_name: str = MODEL_NAME) -> tuple[audit.ChainCheck, list[str]]:
    """The audit chain's own check, then each version's ``gate.audit_hash`` tag against the row
    it names (a chain rewritten whole would still have to match the tags MLflow holds), then
    the gated aliases against where the chain's decisions left them."""
    check = audit.verify_chain()
    if check.broken_at is not None:
        return check, []
    held = {int(d["id"]): d["row_hash"] for d in audit.list_decisions(model_name)}
    problems = []
    for mv in _versions(model_name):
        decision_id, tagged = mv.tags.get("gate.decision_id"), mv.tags.get("gate.audit_hash")
        if decision_id and tagged and held.get(int(decision_id)) != tagged:
            problems.append(
                f"v{mv.version} is tagged with decision #{decision_id} as {tagged[:12]}, "
                "which the audit table does not hold"
            )
    return check, problems + list(alias_problems(model_name).values())
