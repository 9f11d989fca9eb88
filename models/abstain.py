"""When a model abstains: the policy calibrated for it and fixed into its served folder.

An evaluation calibrates the policy once, on the validation split (entities apart from test):
each abstention signal (``models.answer.SCORES``) is scored by its area under the risk-coverage
curve on the calibration answers, the best one is kept, and ``models.risk.certify_risk``
certifies its threshold for the target risk. Certification (``models.certify``) writes the
policy into the served folder's ``routing.json``; serving and every later evaluation read it
back from there and abstain exactly so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infra.settings import get_settings
from models.answer import NEVER_ABSTAIN, SCORES, UNKNOWN, Answer, within_reach
from models.risk import RiskCertificate, aurc, certify_risk, check_target
from models.tokenizer import normalize


@dataclass(frozen=True)
class AbstainPolicy:
    """Abstain on an attempted answer whose ``score`` is over ``threshold``."""

    threshold: float = NEVER_ABSTAIN
    score: str = "estimator"
    certificate: dict[str, Any] = field(default_factory=dict)  # RiskCertificate.to_dict()
    aurc: dict[str, float] = field(default_factory=dict)  # each signal's, on calibration
    # every signal's certified threshold on the same calibration answers, the chosen one's too:
    # what each would have promised, for comparing signals at the asked alpha
    thresholds: dict[str, float] = field(default_factory=dict)
    # the most novel calibration question (``Guide.novelty``): the guarantee reaches questions
    # no more novel than this (None: the model's guide cannot tell novelty; it reaches all)
    novelty_limit: float | None = None

    def routing(self) -> dict[str, Any]:
        """What ``routing.json`` of a served folder records."""
        return {
            "abstain_threshold": self.threshold,
            "abstain_score": self.score,
            "risk": self.certificate,
            "novelty_limit": self.novelty_limit,
        }

    def abstains(self, answer: Answer) -> bool:
        return answer.offered != UNKNOWN and answer.score(self.score) > self.threshold

    def reaches(self, answer: Answer) -> bool:
        """Whether the certified guarantee covers ``answer``'s question, as serving judges it."""
        certified = bool(self.certificate.get("feasible"))
        return within_reach(certified, self.novelty_limit, answer.novelty)


def risk_target(risk: float | None = None, confidence: float | None = None) -> tuple[float, float]:
    """(alpha, delta) asked, the settings' where not given (``VERACITY_RISK__ALPHA``, ...)."""
    asked = get_settings().risk
    alpha = asked.alpha if risk is None else risk
    delta = 1.0 - (asked.confidence if confidence is None else confidence)
    check_target(alpha, delta)
    return alpha, delta


def selective_outcomes(raw: list[Answer], truths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(wrong, attempted) of answers given without a score threshold: attempted is what the
    model offers (``Answer.offered``: after the guide's refusals, as served) when it is not
    ``unknown``; wrong is an attempted answer that is not the truth (a hallucination)."""
    offered = [a.offered for a in raw]
    attempted = np.array([a != UNKNOWN for a in offered], dtype=bool)
    right = np.array([normalize(a) == normalize(t) for a, t in zip(offered, truths, strict=True)])
    return attempted & ~right, attempted


def signal_aurc(raw: list[Answer], truths: list[str]) -> dict[str, float]:
    """Each abstention signal's AURC over the attempted answers (lower: better)."""
    wrong, attempted = selective_outcomes(raw, truths)
    rows = np.flatnonzero(attempted)
    return {
        s: aurc(np.array([raw[i].score(s) for i in rows]), wrong[rows]) if len(rows) else 0.0
        for s in SCORES
    }


def calibrate(
    raw: list[Answer], truths: list[str], alpha: float, delta: float, score: str | None = None
) -> AbstainPolicy:
    """The certified policy on these calibration answers (``score`` None: the best signal)."""
    by_signal = signal_aurc(raw, truths)
    chosen = score or min(SCORES, key=lambda s: (by_signal[s], SCORES.index(s)))
    wrong, attempted = selective_outcomes(raw, truths)
    certs = {
        s: certify_risk(np.array([a.score(s) for a in raw]), wrong, attempted, alpha, delta, s)
        for s in SCORES
    }
    cert = certs[chosen]
    thresholds = {s: c.threshold for s, c in certs.items()}
    return AbstainPolicy(
        cert.threshold, chosen, cert.to_dict(), by_signal, thresholds, novelty_limit(raw)
    )


def novelty_limit(raw: list[Answer]) -> float | None:
    """The most novel calibration question's novelty. A new question written like the
    calibration ones is more novel than all of them with probability at most 1/(n+1)
    (exchangeability), so the guarantee loses almost nothing of them; one written otherwise
    (held-out phrasing, a hand-written note) is outside what the calibration measured."""
    novelties = [a.novelty for a in raw if a.novelty is not None]
    return max(novelties) if novelties else None


def stored_policy(model_dir: str | Path) -> AbstainPolicy | None:
    """The policy fixed into a (served) model folder; None when none was."""
    routing = json.loads((Path(model_dir) / "routing.json").read_text())
    if routing.get("abstain_threshold") is None:
        return None
    return AbstainPolicy(
        float(routing["abstain_threshold"]),
        str(routing.get("abstain_score", "estimator")),
        dict(routing.get("risk") or {}),
        novelty_limit=routing.get("novelty_limit"),
    )


def statement(policy: AbstainPolicy) -> str:
    """The guarantee in one sentence ("" for a policy certified without one)."""
    return RiskCertificate(**policy.certificate).statement() if policy.certificate else ""
