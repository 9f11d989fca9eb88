"""The gate's pure part: policy, floors and the paired statistical test (no MLflow, no database).

Inputs are plain evaluation-report dicts (``models.evaluate.EvalReport.to_dict()``); the registry
never imports ``models``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, TypedDict

import numpy as np

from infra.errors import UserError

REQUIRED_KEYS = (
    "dataset_uri",
    "dataset_digest",
    "accuracy",
    "hallucination_rate",
    "latency_p95_ms",
    "outcomes",
)
SUMMARY_KEYS = (
    "dataset_uri",
    "dataset_digest",
    "split",
    "n",
    "accuracy",
    "hallucination_rate",
    "hallucination_attempted",
    "abstention_rate",
    "latency_p95_ms",
    "coverage",
    "confident_hallucination",
    "risk",  # the abstention certificate: alpha, delta, coverage, bound (models.risk)
)
HELD_OUT_SUMMARY = ("accuracy", "hallucination_rate", "coverage", "confident_hallucination")


class PromotionError(UserError):
    """Bad input (unknown version, no champion to roll back to, rejected dataset, ...)."""


class EvalReportDict(TypedDict, total=False):
    """The part of ``EvalReport.to_dict()`` the gate reads."""

    dataset_uri: str
    dataset_digest: str
    split: str
    n: int
    accuracy: float  # composite
    hallucination_rate: float  # incorrect / total
    hallucination_attempted: float  # incorrect / attempted
    abstention_rate: float
    latency_p95_ms: float
    outcomes: dict[str, str]  # qa_id -> "correct" | "incorrect" | "abstained"
    coverage: float
    confident_hallucination: float
    risk: dict[str, Any]
    heldout: dict[str, Any]  # the same questions in held-out phrasing (models.evaluate)


@dataclass(frozen=True)
class PromotionPolicy:
    """Absolute floors and the comparison rule; recorded with every decision."""

    min_accuracy: float = 0.80
    max_hallucination: float = 0.10
    latency_p95_budget_ms: float = 500.0
    max_hallucination_increase: float = 0.005  # 0.5 percentage point
    # held-out phrasing (issue 29): the hallucination ceiling holds there as in-family; the
    # accuracy floor there is its own, 0 until a model this build trains can clear min_accuracy
    # (the main job reads ~0.43): reported with every decision, gated once raised
    min_heldout_accuracy: float = 0.0
    confidence: float = 0.95
    bootstrap_samples: int = 10_000
    seed: int = 0


@dataclass
class Verdict:
    promoted: bool
    reason: str
    metrics: dict[str, Any] = field(default_factory=dict)
    statistic: dict[str, Any] = field(default_factory=dict)


def check_report(report: Mapping[str, Any], what: str) -> EvalReportDict:
    """The report as a dict, or ``PromotionError`` naming the missing keys."""
    data = report.to_dict() if hasattr(report, "to_dict") else report
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise PromotionError(f"{what}: evaluation report lacks {', '.join(missing)}")
    checked = EvalReportDict(**data)  # type: ignore[typeddict-item]
    checked["outcomes"] = {str(k): str(v) for k, v in data["outcomes"].items()}  # JSON-stable ids
    return checked


def summary(report: EvalReportDict) -> dict[str, Any]:
    out = {k: report.get(k) for k in SUMMARY_KEYS if k in report}
    if report.get("heldout"):
        out["heldout"] = {k: report["heldout"][k] for k in HELD_OUT_SUMMARY}
    return out


def floor_failures(report: EvalReportDict, policy: PromotionPolicy) -> list[str]:
    """The floors a challenger must clear, in-family and, where the report has it, on held-out
    phrasing (the same questions written as training never wrote them): the hallucination
    ceiling on both, the accuracy floor in-family and ``min_heldout_accuracy`` there."""
    failures = []
    tests: list[tuple[str, Mapping[str, Any], float]] = [("", report, policy.min_accuracy)]
    if report.get("heldout"):
        tests.append(("held-out phrasing ", report["heldout"], policy.min_heldout_accuracy))
    for what, figures, floor in tests:
        if figures["accuracy"] < floor:
            failures.append(f"{what}accuracy {figures['accuracy']:.4f} < floor {floor:.4f}")
        if figures["hallucination_rate"] > policy.max_hallucination:
            failures.append(
                f"{what}hallucination {figures['hallucination_rate']:.4f} > ceiling "
                f"{policy.max_hallucination:.4f}"
            )
    if report["latency_p95_ms"] > policy.latency_p95_budget_ms:
        failures.append(
            f"p95 latency {report['latency_p95_ms']:.1f} ms over budget "
            f"{policy.latency_p95_budget_ms:.1f} ms"
        )
    return failures


def mcnemar_exact_p(wins: int, losses: int) -> float:
    """Two-sided exact McNemar p: the discordant pairs as Binomial(wins + losses, 1/2)."""
    n, k = wins + losses, min(wins, losses)
    term, tail = 1, 1  # C(n, 0); exact integers, so no underflow for large n
    for i in range(k):
        term = term * (n - i) // (i + 1)
        tail += term
    return float(min(Fraction(1), Fraction(2 * tail, 2**n)))


def paired_statistics(
    challenger: Mapping[str, str], champion: Mapping[str, str], policy: PromotionPolicy
) -> dict[str, Any]:
    """Paired bootstrap CI of the accuracy difference and McNemar's exact p, paired by qa_id."""
    ids = sorted(challenger)
    if set(ids) != set(champion):
        raise PromotionError("outcomes are not paired: the two reports cover different questions")
    n = len(ids)
    if n == 0:
        raise PromotionError("the evaluation reports have no per-question outcomes")
    a = np.array([challenger[i] == "correct" for i in ids])
    b = np.array([champion[i] == "correct" for i in ids])
    wins, losses = int(np.sum(a & ~b)), int(np.sum(~a & b))
    # Resampling questions with replacement only changes how many wins / losses / ties are
    # drawn, so one multinomial draw per replicate is the same bootstrap at O(samples) cost.
    rng = np.random.default_rng(policy.seed)
    probs = [wins / n, losses / n, (n - wins - losses) / n]
    counts = rng.multinomial(n, probs, size=policy.bootstrap_samples)
    diffs = (counts[:, 0] - counts[:, 1]) / n
    alpha = 1.0 - policy.confidence
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    p = mcnemar_exact_p(wins, losses)
    return {
        "n_paired": n,
        "accuracy_diff": (wins - losses) / n,
        "ci_low": float(low),
        "ci_high": float(high),
        "confidence": policy.confidence,
        "bootstrap_samples": policy.bootstrap_samples,
        "seed": policy.seed,
        "mcnemar_wins": wins,
        "mcnemar_losses": losses,
        "mcnemar_p": p,
    }


def judge(
    challenger: EvalReportDict,
    champion: EvalReportDict | None,
    policy: PromotionPolicy,
    label: str = "the champion",
) -> Verdict:
    """Floors always; against a champion also: accuracy CI low > 0, hallucination, latency."""
    metrics: dict[str, Any] = {"challenger": summary(challenger)}
    failures = floor_failures(challenger, policy)
    if failures:
        return Verdict(False, "floors failed: " + "; ".join(failures), metrics)
    if champion is None:
        return Verdict(True, "first champion: absolute floors pass", metrics)
    metrics["champion"] = summary(champion)
    stat = paired_statistics(challenger["outcomes"], champion["outcomes"], policy)
    reasons = []
    if not stat["ci_low"] > 0:
        reasons.append(
            f"accuracy not better: {policy.confidence:.0%} CI of the paired difference "
            f"[{stat['ci_low']:+.4f}, {stat['ci_high']:+.4f}] is not above 0"
        )
    worse = challenger["hallucination_rate"] - champion["hallucination_rate"]
    if worse > policy.max_hallucination_increase + 1e-12:
        reasons.append(
            f"hallucination worse by {worse * 100:.2f} points "
            f"(> {policy.max_hallucination_increase * 100:.2f})"
        )
    ours, theirs = (r.get("risk", {}).get("alpha") for r in (challenger, champion))
    if ours is not None and theirs is not None and ours != theirs:
        reasons.append(f"abstention certified for another risk ({ours} vs the champion's {theirs})")
    if reasons:
        return Verdict(False, "; ".join(reasons), metrics, stat)
    reason = (
        f"better than {label}: accuracy {stat['accuracy_diff']:+.4f} "
        f"(CI low {stat['ci_low']:+.4f}, McNemar p={stat['mcnemar_p']:.3g})"
    )
    return Verdict(True, reason, metrics, stat)
