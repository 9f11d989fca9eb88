"""Abstention with a guarantee: the threshold chosen by Learn then Test (Angelopoulos et al.).

The user states a target risk ``alpha``, the hallucination rate among answered questions, and
a confidence ``1 - delta``. On a calibration split (entities apart from the test split) a
candidate threshold ``t`` answers the questions whose uncertainty is at most ``t`` and that the
model did not itself answer ``unknown``. Among the ``n`` it answers, the ``k`` wrong ones are
Binomial(n, R(t)); the null "R(t) > alpha" is rejected when the exact binomial p-value
P(Binomial(n, alpha) <= k) is at most ``delta``. The candidates are tested in a fixed sequence,
most confident first, in an order read from the scores alone (never the labels); the sequence
stops at the first null it cannot reject, which keeps the family-wise error at ``delta``. The
last rejected threshold is certified: with probability at least ``1 - delta`` over the
calibration draw, the hallucination rate among the answers it lets through, on new questions of
the same distribution, is at most ``alpha``.

The sequence starts where a test can pass at all: ``n >= log(delta) / log(1 - alpha)`` answered
(230 at alpha 0.01, delta 0.1), a count read from the scores. Where no threshold passes, the
certificate says so and the model answers nothing (:data:`ANSWER_NOTHING`): it does not promise
what the calibration data cannot back.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import beta as beta_dist
from scipy.stats import binom

from infra.errors import UserError

ANSWER_NOTHING = -1.0  # below every score in [0, 1]: every question is abstained on
GRID_STEP = 0.005  # candidates at least this share of the calibration apart (coverage steps)


class RiskTargetError(UserError, ValueError):
    """A target risk or confidence that cannot be stated."""


@dataclass(frozen=True)
class RiskCertificate:
    """What the calibration split backs: the threshold and the figures that justify it."""

    alpha: float  # target hallucination rate among answered questions
    delta: float  # 1 - confidence
    score: str  # the uncertainty the threshold applies to
    threshold: float  # answer when uncertainty <= threshold (ANSWER_NOTHING: never)
    feasible: bool  # False: no threshold met the target; the model answers nothing
    n_calibration: int
    answered: int  # calibration questions answered at the threshold
    wrong: int  # of those, wrong
    coverage: float  # answered / calibration questions the model attempted
    bound: float  # Clopper-Pearson upper (1 - delta) bound on the risk at the threshold

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def statement(self) -> str:
        """The guarantee in one sentence, or why there is none."""
        target = f"at most {self.alpha:.2%} of answered questions wrong"
        if not self.feasible:
            return (
                f"no threshold certifies {target} with {1 - self.delta:.0%} confidence on "
                f"{self.n_calibration} calibration questions: the model answers nothing"
            )
        return (
            f"{target}, with {1 - self.delta:.0%} confidence (calibration: {self.wrong} wrong of "
            f"{self.answered} answered, coverage {self.coverage:.3f}, bound {self.bound:.4f})"
        )


def check_target(alpha: float, delta: float) -> None:
    """A target that can be stated: 0 < alpha < 1 and a confidence 1 - delta in (0, 1)."""
    if not 0.0 < alpha < 1.0:
        raise RiskTargetError(f"--risk must be between 0 and 1 (a rate such as 0.01); got {alpha}")
    if not 0.0 < delta < 1.0:
        raise RiskTargetError(
            f"--confidence must be between 0 and 1 (such as 0.9); got {1 - delta:g}"
        )


def min_answered(alpha: float, delta: float) -> int:
    """The fewest answers with which a null can be rejected (all of them right)."""
    return math.ceil(math.log(delta) / math.log(1.0 - alpha))


def p_value(wrong: int, answered: int, alpha: float) -> float:
    """Exact binomial p-value of "risk > alpha" after ``wrong`` of ``answered``."""
    return float(binom.cdf(wrong, answered, alpha)) if answered else 1.0


def upper_bound(wrong: int, answered: int, delta: float) -> float:
    """Clopper-Pearson upper (1 - delta) confidence bound on a rate."""
    if answered == 0 or wrong >= answered:
        return 1.0
    return float(beta_dist.ppf(1.0 - delta, wrong + 1, answered - wrong))


def candidates(scores: np.ndarray, start: int, step: int) -> list[float]:
    """Thresholds from the ``start``-th most confident answer on, about ``step`` answers apart,
    each at a distinct score (ties answer together), ending with the largest score."""
    ordered = np.sort(scores)
    out: list[float] = []
    i = start - 1
    while i < len(ordered):
        t = float(ordered[i])
        if not out or t > out[-1]:
            out.append(t)
        i += step
    if len(ordered) and (not out or ordered[-1] > out[-1]):
        out.append(float(ordered[-1]))
    return out


def certify_risk(
    uncertainty: np.ndarray,
    wrong: np.ndarray,
    attempted: np.ndarray,
    alpha: float,
    delta: float,
    score: str = "estimator",
) -> RiskCertificate:
    """The largest-coverage threshold whose risk the calibration answers certify (see above).

    ``uncertainty``: each calibration question's score (higher: less sure); ``wrong``: its
    answer is not the truth; ``attempted``: the model answered something other than unknown."""
    check_target(alpha, delta)
    scores = np.asarray(uncertainty, dtype=float)[np.asarray(attempted, dtype=bool)]
    errors = np.asarray(wrong, dtype=bool)[np.asarray(attempted, dtype=bool)]
    n_min = min_answered(alpha, delta)
    best: tuple[float, int, int] | None = None
    if len(scores) >= n_min:
        for t in candidates(scores, n_min, max(1, round(GRID_STEP * len(scores)))):
            answered = scores <= t
            n, k = int(answered.sum()), int(errors[answered].sum())
            if p_value(k, n, alpha) > delta:
                break  # fixed sequence: the first null not rejected ends the testing
            best = (t, n, k)
    if best is None:
        k_all = int(errors.sum())
        return RiskCertificate(
            alpha, delta, score, ANSWER_NOTHING, False, len(uncertainty), 0, 0, 0.0,
            upper_bound(k_all, len(scores), delta),
        )  # fmt: skip
    t, n, k = best
    return RiskCertificate(
        alpha, delta, score, t, True, len(uncertainty), n, k,
        n / max(1, len(scores)), upper_bound(k, n, delta),
    )  # fmt: skip


def risk_coverage(uncertainty: np.ndarray, wrong: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coverage and selective risk when answering the most confident first (the attempted
    answers only)."""
    order = np.argsort(np.asarray(uncertainty, dtype=float), kind="stable")
    errors = np.asarray(wrong, dtype=float)[order]
    n = np.arange(1, len(errors) + 1)
    return n / max(1, len(errors)), np.cumsum(errors) / n


def aurc(uncertainty: np.ndarray, wrong: np.ndarray) -> float:
    """Area under the risk-coverage curve (lower is better: errors sorted to the end)."""
    if len(uncertainty) == 0:
        return 0.0
    _, risk = risk_coverage(uncertainty, wrong)
    return float(risk.mean())


def realised(
    certificate: RiskCertificate, uncertainty: np.ndarray, wrong: np.ndarray, attempted: np.ndarray
) -> dict[str, float]:
    """What the certified threshold does on other questions (a test split): coverage and the
    hallucination rate among the answers it lets through."""
    attempted = np.asarray(attempted, dtype=bool)
    answered = attempted & (np.asarray(uncertainty, dtype=float) <= certificate.threshold)
    n = int(answered.sum())
    k = int(np.asarray(wrong, dtype=bool)[answered].sum())
    return {
        "coverage": n / max(1, int(attempted.sum())),
        "risk": k / n if n else 0.0,
        "answered": float(n),
        "wrong": float(k),
    }
