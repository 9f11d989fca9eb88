"""Evaluation against the world model's ground truth.

Each question is answered greedily and scored by exact match after normalisation: by default the
first ``EVAL_PER_DOMAIN`` questions of each domain (the same ones for every model, so the gate's
paired test compares like with like), or every question with ``per_domain=None``. Outcomes are
SimpleQA style: ``correct``, ``incorrect`` (an attempted answer that is wrong: a hallucination)
or ``abstained`` (the model said ``unknown`` where an answer existed). ``unknown`` is the one
correct answer to an unanswerable question.

Abstention: the model answers ``unknown`` when its uncertainty passes the threshold certified on
the validation split for the asked risk (``models.abstain``, ``models.risk``): at most ``alpha``
of the answered questions wrong, with confidence ``1 - delta``. A model whose folder already
holds a policy (a served, certified one) abstains as it was certified to.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.exceptions import MlflowException

from infra.errors import UserError
from infra.settings import get_settings
from models.abstain import (
    AbstainPolicy,
    calibrate,
    risk_target,
    selective_outcomes,
    signal_aurc,
    statement,
    stored_policy,
)
from models.answer import SCORES, UNKNOWN, Answer, Answerer
from models.lit import binary_auroc
from models.risk import risk_coverage
from models.tokenizer import normalize
from worldgen.dataset import load_qa, read_manifest

CONFIDENT = 0.9  # a wrong answer given at this confidence or more is a confident hallucination
Z95 = 1.959964  # the standard normal's 97.5% quantile
# questions answered per domain and split (None: all). 300 per domain puts the standard error of
# a composite accuracy near 0.9 at about one point, and answering at batch size 1 stays ~a minute
EVAL_PER_DOMAIN = 300
# calibration questions per domain (validation split, ~4,300 a domain at the default size): the
# bound's slack over the observed risk shrinks with them, and coverage grows. One seed-0 model,
# entropy at 1% risk, in-family / held-out test coverage: 0.890 / 0.825 at 1000 a domain,
# 0.937 / 0.894 at 2000, 0.942 / 0.906 at 4000; ~30 s of batched answering at 4000
CALIBRATION_PER_DOMAIN = 4000
LATENCY_SAMPLE = 100  # requests timed one at a time for the latency percentiles


@dataclass
class EvalReport:
    dataset_uri: str
    dataset_digest: str
    split: str
    n: int
    accuracy: float  # composite: mean of the per-domain accuracies
    accuracy_by_domain: dict[str, float]
    accuracy_by_kind: dict[str, float]
    hallucination_rate: float  # incorrect / total
    hallucination_attempted: float  # incorrect / attempted
    abstention_rate: float
    abstain_threshold: float
    latency_p50_ms: float
    latency_p95_ms: float
    tokens_per_s: float
    routed_fraction: float  # routed answer tokens / answer tokens (what the design targets)
    estimator_auroc: float
    ece: float
    brier: float
    flops_per_answer: float
    # 95% intervals: what the figures above can claim from this many questions ([] in reports
    # written before they were kept)
    accuracy_ci95: list[float] = field(default_factory=list)
    hallucination_ci95: list[float] = field(default_factory=list)
    routed_by_kind: dict[str, float] = field(default_factory=dict)
    # the mean of each answer's routed share: a two-token "yes" weighs as much as a 70-token
    # derivation, so it reads higher (0.17 where 0.127 of the tokens were routed, main job)
    routed_per_answer: float = 0.0
    derivation_rate: float = 0.0  # share of answers the model derived (computed exactly)
    reliability: list[list[float]] = field(
        default_factory=list
    )  # [confidence, accuracy, share] per bin
    outcomes: dict[str, str] = field(
        default_factory=dict
    )  # "domain/qa_id" -> correct/incorrect/abstained
    # every answer that was not correct, with what the model wrote: the audit of each error
    mistakes: dict[str, dict[str, str]] = field(default_factory=dict)
    # the abstention policy: which signal, its certificate (models.risk: alpha, delta,
    # threshold, calibration coverage and bound; {} when fixed without one) and its sentence
    abstain_score: str = "estimator"
    risk: dict[str, Any] = field(default_factory=dict)
    guarantee: str = ""
    coverage: float = 1.0  # answered / attempted on this split
    selective_risk: float = 0.0  # wrong / answered on this split: what the guarantee bounds
    confident_hallucination: float = 0.0  # wrong, not abstained, confidence >= CONFIDENT
    # how far the guarantee reaches (models.abstain.novelty_limit): the novelty limit, the
    # share of answered questions within it, and the hallucination rate among those
    novelty_limit: float | None = None
    guaranteed: float = 0.0
    guaranteed_risk: float = 0.0
    aurc: dict[str, float] = field(default_factory=dict)  # each signal's on this split
    # each signal at its own certified threshold on this split: coverage and selective risk
    at_alpha: dict[str, dict[str, float]] = field(default_factory=dict)
    # each signal's risk-coverage curve on this split: [coverage, risk] at up to 50 points
    risk_coverage: dict[str, list[list[float]]] = field(default_factory=dict)
    # the same model and policy on the same entities written only in held-out phrasing
    # (worldgen.surface): HELD_OUT_FIGURES of that report, and its dataset ({} when not run)
    heldout: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalReport:
        return cls(**data)

    def headline(self) -> dict[str, float]:
        """The scalar metrics, as MLflow logs them."""
        out = {k: v for k, v in asdict(self).items() if isinstance(v, int | float)}
        out.update({f"accuracy_{d}": v for d, v in self.accuracy_by_domain.items()})
        out.update({f"accuracy_kind_{k}": v for k, v in self.accuracy_by_kind.items()})
        out.update({f"aurc_{k}": v for k, v in self.aurc.items()})
        out.update({f"coverage_at_alpha_{k}": v["coverage"] for k, v in self.at_alpha.items()})
        out.update({f"risk_{k}": float(v) for k, v in self.risk.items() if k in RISK_METRICS})
        if self.heldout:
            out.update({f"heldout_{k}": float(self.heldout[k]) for k in HELD_OUT_SCALARS})
            by_domain = self.heldout["accuracy_by_domain"].items()
            out.update({f"heldout_accuracy_{d}": float(v) for d, v in by_domain})
        for name, interval in (
            ("accuracy", self.accuracy_ci95),
            ("hallucination", self.hallucination_ci95),
        ):
            if interval:
                out[f"{name}_ci95_low"], out[f"{name}_ci95_high"] = interval
        return out


RISK_METRICS = ("alpha", "delta", "coverage", "bound", "feasible")
HELD_OUT_SCALARS = (
    "accuracy",
    "hallucination_rate",
    "coverage",
    "selective_risk",
    "confident_hallucination",
    "abstention_rate",
    "guaranteed",
    "guaranteed_risk",
)
HELD_OUT_FIGURES = (
    *HELD_OUT_SCALARS,
    "n",
    "accuracy_by_domain",
    "accuracy_by_kind",
    "aurc",
    "at_alpha",
    "dataset_uri",
    "dataset_digest",
    "outcomes",
    "mistakes",
)


def wilson_interval(hits: int, n: int, z: float = Z95) -> list[float]:
    """Wilson score interval of a rate: honest near 0 and 1, where the normal one collapses
    (0 hallucinations in 300 questions still allows ~1.3%)."""
    if n == 0:
        return [0.0, 1.0]
    p, z2 = hits / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def composite_interval(correct_by_domain: list[np.ndarray], z: float = Z95) -> list[float]:
    """Normal interval of the mean of per-domain accuracies, each domain sampled on its own."""
    rates = [float(c.mean()) for c in correct_by_domain]
    mean = float(np.mean(rates))
    var = sum(p * (1 - p) / len(c) for p, c in zip(rates, correct_by_domain, strict=True))
    half = z * math.sqrt(var) / len(rates)
    return [max(0.0, mean - half), min(1.0, mean + half)]


def qa_key(domain: str, qa_id: int) -> str:
    """qa ids are unique within a domain; outcomes are keyed across domains."""
    return f"{domain}/{qa_id}"


def outcome(answer: str, truth: str) -> str:
    if normalize(answer) == normalize(truth):
        return "correct"
    return "abstained" if answer == UNKNOWN else "incorrect"


def answer_all(answerer: Answerer, frame: pd.DataFrame) -> list[Answer]:
    """Every question's answer, in batches (``Answerer.many``)."""
    return answerer.many(list(zip(frame["document"], frame["question"], strict=True)))


def request_latency(answerer: Answerer, frame: pd.DataFrame) -> np.ndarray:
    """Milliseconds to answer one request alone, as a served endpoint does: the first
    LATENCY_SAMPLE questions spread evenly over the split (every domain), one at a time (what
    the gate's latency budget is about)."""
    spread = np.unique(np.linspace(0, len(frame) - 1, min(LATENCY_SAMPLE, len(frame))).astype(int))
    rows = frame.iloc[spread]
    return np.array(
        [
            answerer(d, q).latency_s * 1000
            for d, q in zip(rows["document"], rows["question"], strict=True)
        ]
    )


def routed_share(raw: list[Answer]) -> float:
    """The share of the answer tokens that went through refinement."""
    tokens = sum(a.answer_tokens for a in raw)
    return sum(a.routed_fraction * a.answer_tokens for a in raw) / tokens if tokens else 0.0


def apply_policy(raw: list[Answer], policy: AbstainPolicy) -> list[str]:
    """What serving says: the offered answer (the guide's refusals are ``unknown``) unless
    the policy's threshold abstains."""
    return [UNKNOWN if policy.abstains(a) else a.offered for a in raw]


def reliability_bins(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> list[list[float]]:
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges) - 1, 0, bins - 1)
    return [
        [
            float(confidence[which == b].mean()),
            float(correct[which == b].mean()),
            float((which == b).mean()),
        ]
        for b in range(bins)
        if (which == b).any()
    ]


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> tuple[float, float]:
    """Expected calibration error (equal-width bins) and Brier score."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges) - 1, 0, bins - 1)
    ece = sum(
        abs(confidence[which == b].mean() - correct[which == b].mean()) * (which == b).mean()
        for b in range(bins)
        if (which == b).any()
    )
    return float(ece), float(np.mean((confidence - correct) ** 2))


def evaluate(
    model_uri: str,
    dataset_uri: str,
    split: str = "test",
    abstain_threshold: float | None = None,
    per_domain: int | None = EVAL_PER_DOMAIN,
    risk: float | None = None,
    confidence: float | None = None,
    heldout_uri: str | None = None,
) -> EvalReport:
    """Answer the questions of ``split`` (the first ``per_domain`` of each domain: the same ones
    for every model). The abstention policy is the model's own where one was fixed into it (a
    registered model abstains as it was certified to), a fixed ``abstain_threshold`` on the
    estimator when given, else calibrated on the validation split for ``risk`` at
    ``confidence`` (the settings' ``risk`` where not given). ``heldout_uri``: the same split
    written in held-out phrasing, answered under the same policy (``EvalReport.heldout``)."""
    model_dir = resolve_model(model_uri)
    answerer = Answerer.load(model_dir)
    policy = stored_policy(model_dir)
    if abstain_threshold is not None:
        policy = AbstainPolicy(abstain_threshold)
    elif policy is None:
        alpha, delta = risk_target(risk, confidence)
        cal_size = None if per_domain is None else max(per_domain, CALIBRATION_PER_DOMAIN)
        cal = load_qa(dataset_uri, "validation", per_domain=cal_size)
        policy = calibrate(answer_all(answerer, cal), list(cal["answer"]), alpha, delta)
    frame = load_qa(dataset_uri, split, per_domain=per_domain)
    raw = answer_all(answerer, frame)
    latency = request_latency(answerer, frame)
    report = build_report(answerer, frame, raw, policy, dataset_uri, split, latency)
    if heldout_uri is not None:
        other = load_qa(heldout_uri, split, per_domain=per_domain)
        moved = build_report(
            answerer, other, answer_all(answerer, other), policy, heldout_uri, split, latency
        )
        report.heldout = {k: getattr(moved, k) for k in HELD_OUT_FIGURES}
    return report


def build_report(
    answerer: Answerer,
    frame: pd.DataFrame,
    raw: list[Answer],
    policy: AbstainPolicy,
    dataset_uri: str,
    split: str,
    latency: np.ndarray,
) -> EvalReport:
    answers = apply_policy(raw, policy)
    outcomes = np.array([outcome(a, t) for a, t in zip(answers, frame["answer"], strict=True)])
    correct = outcomes == "correct"
    incorrect = outcomes == "incorrect"
    attempted = np.array([a != UNKNOWN for a in answers])
    correct_by_domain = {
        d: correct[(frame["domain"] == d).to_numpy()] for d in sorted(set(frame["domain"]))
    }
    by_domain = {d: float(c.mean()) for d, c in correct_by_domain.items()}
    by_kind = {
        k: float(correct[(frame["kind"] == k).to_numpy()].mean())
        for k in sorted(set(frame["kind"]))
    }
    answering_s = sum(a.latency_s for a in raw)  # batched: each answer's share of its batch
    tokens = sum(a.prompt_tokens + a.answer_tokens for a in raw)
    confidence = 1.0 - np.array([a.uncertainty for a in raw])
    raw_correct = np.array(
        [normalize(a.raw) == normalize(t) for a, t in zip(raw, frame["answer"], strict=True)]
    )
    ece, brier = calibration(confidence, raw_correct.astype(float))
    routed = routed_share(raw)
    model = answerer.model
    flops = float(
        np.mean(
            [
                model.flops_per_token(routed, a.prompt_tokens + a.answer_tokens)
                * (a.prompt_tokens + a.answer_tokens)
                for a in raw
            ]
        )
    )
    return EvalReport(
        dataset_uri=dataset_uri,
        dataset_digest=read_manifest(dataset_uri)["digest"],
        split=split,
        n=len(frame),
        accuracy=float(np.mean(list(by_domain.values()))),
        accuracy_by_domain=by_domain,
        accuracy_by_kind=by_kind,
        hallucination_rate=float(incorrect.mean()),
        hallucination_attempted=float(incorrect.sum() / max(1, attempted.sum())),
        abstention_rate=float(np.mean([a != r.raw for a, r in zip(answers, raw, strict=True)])),
        abstain_threshold=policy.threshold,
        latency_p50_ms=float(np.percentile(latency, 50)),
        latency_p95_ms=float(np.percentile(latency, 95)),
        tokens_per_s=float(tokens / max(1e-9, answering_s)),
        routed_fraction=routed,
        estimator_auroc=binary_auroc(torch.tensor(1 - confidence), torch.tensor(~raw_correct)),
        ece=ece,
        brier=brier,
        flops_per_answer=flops,
        accuracy_ci95=composite_interval(list(correct_by_domain.values())),
        hallucination_ci95=wilson_interval(int(incorrect.sum()), len(frame)),
        routed_by_kind={
            k: routed_share([a for a, kk in zip(raw, frame["kind"], strict=True) if kk == k])
            for k in by_kind
        },
        routed_per_answer=float(np.mean([a.routed_fraction for a in raw])),
        derivation_rate=float(np.mean([bool(a.derivation) for a in raw])),
        reliability=reliability_bins(confidence, raw_correct.astype(float)),
        outcomes={
            qa_key(d, q): o
            for d, q, o in zip(frame["domain"], frame["qa_id"], outcomes, strict=True)
        },
        mistakes=mistakes(frame, raw, answers, outcomes),
        **selective_figures(raw, list(frame["answer"]), answers, policy),
    )


def selective_figures(
    raw: list[Answer], truths: list[str], answers: list[str], policy: AbstainPolicy
) -> dict[str, Any]:
    """The abstention policy and what it did on these questions."""
    wrong, attempted = selective_outcomes(raw, truths)
    answered = attempted & np.array([a != UNKNOWN for a in answers])
    # coverage counts against what the model wrote: an answer the guide refused is lost too
    wrote = np.array([a.raw != UNKNOWN for a in raw], dtype=bool)
    confident = np.array([1.0 - a.uncertainty >= CONFIDENT for a in raw])
    reached = answered & np.array([policy.reaches(a) for a in raw], dtype=bool)
    return {
        "abstain_score": policy.score,
        "risk": policy.certificate,
        **answered_rates(answered, wrong, wrote),
        "novelty_limit": policy.novelty_limit,
        "guaranteed": float(reached.sum() / max(1, answered.sum())),
        "guaranteed_risk": float((wrong & reached).sum() / max(1, reached.sum())),
        "guarantee": statement(policy),
        "confident_hallucination": float((wrong & answered & confident).mean()),
        "aurc": signal_aurc(raw, truths),
        "at_alpha": {  # each signal as if served at its own certified threshold
            s: {
                "threshold": float(t),
                **answered_rates(
                    attempted & (np.array([a.score(s) for a in raw]) <= t), wrong, wrote
                ),
            }
            for s, t in policy.thresholds.items()
        },
        "risk_coverage": curves(raw, wrong, attempted),
    }


def answered_rates(answered: np.ndarray, wrong: np.ndarray, wrote: np.ndarray) -> dict[str, float]:
    """Coverage (answered / answers written other than ``unknown``) and selective risk
    (wrong / answered)."""
    return {
        "coverage": float(answered.sum() / max(1, wrote.sum())),
        "selective_risk": float((wrong & answered).sum() / max(1, answered.sum())),
    }


def curves(raw: list[Answer], wrong: np.ndarray, attempted: np.ndarray) -> dict[str, Any]:
    rows = np.flatnonzero(attempted)
    out = {}
    for s in SCORES:
        coverage, risk = risk_coverage(np.array([raw[i].score(s) for i in rows]), wrong[rows])
        keep = np.unique(np.linspace(0, len(rows) - 1, min(50, len(rows))).astype(int))
        out[s] = [[round(float(coverage[i]), 4), round(float(risk[i]), 5)] for i in keep]
    return out


def mistakes(
    frame: pd.DataFrame, raw: list[Answer], answers: list[str], outcomes: np.ndarray
) -> dict[str, dict[str, str]]:
    """Each answer that was not correct, by "domain/qa_id": the question and its key, what was
    said and derived at what confidence, and the world model's answer and derivation."""
    rows = frame.assign(
        said=answers,
        wrote=[a.derivation for a in raw],
        # cut, not rounded: it reads CONFIDENT or more only where it is
        confidence=[f"{math.floor((1.0 - a.uncertainty) * 1000) / 1000:.3f}" for a in raw],
        outcome=outcomes,
    )
    return {
        qa_key(r.domain, r.qa_id): {
            "question": r.question,
            "key": r.key,
            "said": r.said,
            "derivation": r.wrote,
            "confidence": r.confidence,
            "truth": r.answer,
            "truth_derivation": r.derivation,
        }
        for r in rows[rows["outcome"] != "correct"].itertuples()
    }


def confident_mistakes(mistakes: dict[str, dict[str, str]]) -> list[dict[str, str]]:
    """The ``mistakes`` given, not abstained, at ``CONFIDENT`` or more, each with its
    "domain/qa_id": every confident hallucination, to read."""
    return [
        {"qa": qa, **m}
        for qa, m in mistakes.items()
        if m["said"] != UNKNOWN and float(m["confidence"]) >= CONFIDENT
    ]


class ModelNotFound(UserError):
    """What was named as a model holds none."""


def resolve_model(model_uri: str) -> str:
    """A local model directory (or a run directory holding ``model/``), or an MLflow URI
    (models:/name@alias, runs:/...) downloaded."""
    path = Path(model_uri)
    if path.is_dir():
        for folder in (path, path / "model"):
            if (folder / "model.safetensors").is_file() and (folder / "config.json").is_file():
                return str(folder)
        raise ModelNotFound(
            f"{model_uri} is not a Veracity model (no model.safetensors and config.json); "
            "pass a run's model folder or an MLflow URI such as models:/veracity-apr@champion"
        )
    if ":/" not in model_uri:
        raise ModelNotFound(
            f"no model at {model_uri}: not a folder, nor an MLflow URI such as "
            "models:/veracity-apr@champion"
        )
    # the settings' store, as every stage uses: MLflow's default is ./mlflow.db, and it resolves
    # a models:/ alias through the global registry URI whatever download_artifacts is given
    store = get_settings().tracking_uri
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    except MlflowException as exc:
        raise ModelNotFound(f"{model_uri}: {str(exc.message).strip().splitlines()[0]}") from None
    found = next((p.parent for p in local.rglob("model.safetensors")), None)
    if found is None:
        raise ModelNotFound(f"{model_uri} holds no Veracity model (no model.safetensors)")
    return str(found)


def save_report(report: EvalReport, path: str | Path) -> None:
    Path(path).write_text(json.dumps(report.to_dict(), indent=2))
