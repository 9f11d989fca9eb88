"""The model registry and its promotion gate (``veracity-apr`` on MLflow 3, aliases not stages).

Typical flow::

    from registry import register_challenger, record_evaluation, promote, PromotionPolicy

    version = register_challenger(model_uri, run_id, {"validation_status": "accepted", ...})
    record_evaluation(version, eval_report.to_dict())
    decision = promote(version, PromotionPolicy(), evaluate=models.evaluate.evaluate)

``rollback()`` moves ``champion`` back to ``previous-champion``; ``registry_table()`` and
``recent_decisions()`` feed ``veracity registry``. Every decision is in the audit table
(:mod:`registry.audit`) and in ``gate.*`` tags on the version. The registry never trains or
evaluates: the evaluator is a callable handed in by the flows layer.
"""

from registry.aliases import UngatedAlias, record_ungated_use, require_gated
from registry.client import MODEL_NAME
from registry.evaluations import load_evaluation, record_evaluation
from registry.gate import EvalReportDict, PromotionError, PromotionPolicy, paired_statistics
from registry.promotion import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    PromotionDecision,
    promote,
    register_challenger,
    rollback,
)
from registry.views import recent_decisions, registry_table, verify_audit

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "MODEL_NAME",
    "PREVIOUS",
    "EvalReportDict",
    "PromotionDecision",
    "PromotionError",
    "PromotionPolicy",
    "UngatedAlias",
    "load_evaluation",
    "paired_statistics",
    "promote",
    "recent_decisions",
    "record_evaluation",
    "record_ungated_use",
    "register_challenger",
    "registry_table",
    "require_gated",
    "rollback",
    "verify_audit",
]
