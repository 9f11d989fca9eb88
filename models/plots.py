"""Evaluation plots (matplotlib, headless): what MLflow shows next to the numbers."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from models.evaluate import EvalReport


def reliability_diagram(report: EvalReport) -> Figure:
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    if report.reliability:
        conf, acc, share = zip(*report.reliability, strict=True)
        ax.plot(conf, acc, "o-", label=f"model (ECE {report.ece:.3f})")
        ax.bar(conf, share, width=0.05, alpha=0.3, label="share of answers")
    ax.set(xlabel="confidence", ylabel="accuracy", title="Reliability", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def risk_coverage(report: EvalReport) -> Figure:
    """Hallucination among answered questions as each signal lets more through, with the
    target risk and the certified coverage."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for score, points in report.risk_coverage.items():
        if points:
            coverage, risk = zip(*points, strict=True)
            aurc = report.aurc.get(score, float("nan"))
            ax.plot(coverage, risk, label=f"{score} (AURC {aurc:.4f})")
    alpha = report.risk.get("alpha")
    if alpha is not None:
        ax.axhline(alpha, color="grey", ls="--", label=f"target risk {alpha:g}")
        ax.axvline(report.coverage, color="black", ls=":", label=f"served ({report.abstain_score})")
    ax.set(xlabel="coverage (answered / attempted)", ylabel="hallucination among answered")
    ax.set(title="Risk-coverage", xlim=(0, 1), ylim=(0, None))
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def routed_by_kind(report: EvalReport) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    kinds = sorted(report.routed_by_kind)
    ax.bar(kinds, [report.routed_by_kind[k] for k in kinds])
    ax.set(ylabel="routed fraction of answer tokens", title="Routing by question kind", ylim=(0, 1))
    fig.tight_layout()
    return fig


def accuracy_vs_compute(reports: Mapping[str, EvalReport]) -> Figure:
    """One point per mode (dense / apr / all): accuracy against FLOPs per answer."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for mode, r in reports.items():
        ax.scatter(r.flops_per_answer, r.accuracy, s=40)
        ax.annotate(
            mode, (r.flops_per_answer, r.accuracy), textcoords="offset points", xytext=(5, 5)
        )
    ax.set(xlabel="FLOPs per answer", ylabel="factual accuracy", title="Accuracy vs compute")
    fig.tight_layout()
    return fig
