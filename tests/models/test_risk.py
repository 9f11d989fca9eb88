"""The abstention guarantee's arithmetic (models.risk) and the choice of signal (models.abstain),
checked against cases computed by hand."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from models.abstain import AbstainPolicy, calibrate, novelty_limit, selective_outcomes
from models.answer import Answer
from models.evaluate import apply_policy, selective_figures
from models.risk import (
    ANSWER_NOTHING,
    RiskTargetError,
    aurc,
    certify_risk,
    min_answered,
    p_value,
    realised,
    upper_bound,
)


def binom_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def test_the_binomial_arithmetic_by_hand() -> None:
    # 0.99**229 = 0.1001 > 0.1 and 0.99**230 = 0.0991: 230 right answers are the fewest that
    # can back "at most 1% wrong" with 90% confidence
    assert min_answered(0.01, 0.1) == 230
    assert p_value(0, 230, 0.01) == pytest.approx(0.99**230)
    assert p_value(1, 400, 0.01) == pytest.approx(0.99**400 + 400 * 0.01 * 0.99**399)
    # Clopper-Pearson with no errors: 1 - delta**(1/n)
    assert upper_bound(0, 230, 0.1) == pytest.approx(1 - 0.1 ** (1 / 230))
    assert upper_bound(5, 5, 0.1) == 1.0


def test_the_largest_coverage_the_calibration_backs() -> None:
    # 1000 attempted answers, uncertainty i/1000; the ten least sure are wrong. Candidates go
    # 5 answers apart from the 230th; every one up to 990 answered holds no error, 995 answered
    # hold 5 (p = P(Bin(995, .01) <= 5) = 0.066 <= 0.1) and 1000 hold 10 (p = 0.58): 995.
    scores = np.arange(1000) / 1000
    wrong = scores >= 0.990
    assert binom_cdf(5, 995, 0.01) < 0.1 < binom_cdf(10, 1000, 0.01)
    cert = certify_risk(scores, wrong, np.ones(1000, bool), 0.01, 0.1)
    assert cert.feasible and cert.answered == 995 and cert.wrong == 5
    assert cert.threshold == pytest.approx(0.994) and cert.coverage == pytest.approx(0.995)
    assert cert.bound == pytest.approx(upper_bound(5, 995, 0.1)) and cert.bound <= 0.01 + 0.002
    assert "at most 1.00% of answered questions wrong, with 90% confidence" in cert.statement()
    # on other questions it answers those at most as unsure, and says how many were wrong
    got = realised(cert, np.array([0.1, 0.5, 0.995, 0.2]), np.array([0, 1, 1, 0], bool), [1] * 4)
    assert got == {"coverage": 0.75, "risk": 1 / 3, "answered": 3.0, "wrong": 1.0}


def test_no_threshold_backs_the_target_so_nothing_is_answered() -> None:
    scores = np.arange(300) / 300
    wrong = np.arange(300) % 20 == 0  # 5% wrong, spread over every level of confidence
    cert = certify_risk(scores, wrong, np.ones(300, bool), 0.01, 0.1)
    assert not cert.feasible and cert.threshold == ANSWER_NOTHING and cert.coverage == 0.0
    assert "the model answers nothing" in cert.statement()
    assert realised(cert, scores, wrong, np.ones(300, bool))["coverage"] == 0.0
    # too few questions to back anything, even all right
    few = certify_risk(np.zeros(100), np.zeros(100, bool), np.ones(100, bool), 0.01, 0.1)
    assert not few.feasible


def test_the_sequence_stops_at_its_first_unrejected_null() -> None:
    # an error among the 230 most confident ends the testing, however clean the rest is
    scores = np.arange(2000) / 2000
    wrong = np.zeros(2000, bool)
    wrong[[3, 7]] = True
    assert not certify_risk(scores, wrong, np.ones(2000, bool), 0.01, 0.1).feasible


def test_unknown_answers_are_not_counted_as_answered() -> None:
    scores = np.arange(1000) / 1000
    attempted = np.arange(1000) % 2 == 0
    cert = certify_risk(scores, np.zeros(1000, bool), attempted, 0.01, 0.1)
    assert cert.answered == 500 and cert.coverage == 1.0 and cert.n_calibration == 1000


def test_a_target_that_cannot_be_stated_is_refused() -> None:
    for alpha, delta in ((0.0, 0.1), (1.0, 0.1), (0.01, 0.0), (0.01, 1.5)):
        with pytest.raises(RiskTargetError):
            certify_risk(np.zeros(3), np.zeros(3, bool), np.ones(3, bool), alpha, delta)


def _answer(raw: str, estimator: float, prob: float, entropy: float) -> Answer:
    return Answer(
        raw, raw, "", estimator, False, 0.1, 10, 2, 0.001, prob_uncertainty=prob, entropy=entropy
    )


def test_the_signal_with_the_lower_aurc_is_chosen_and_certified() -> None:
    rng = np.random.default_rng(0)
    # max_prob puts every error last; the estimator's and the entropy's scores are noise
    raw = [_answer("yes", float(rng.random()), i / 2000, float(rng.random())) for i in range(2000)]
    truths = ["yes"] * 1990 + ["no"] * 10
    wrong, attempted = selective_outcomes(raw, truths)
    assert wrong.sum() == 10 and attempted.all()
    policy = calibrate(raw, truths, 0.01, 0.1)
    assert policy.score == "max_prob" and policy.aurc["max_prob"] < policy.aurc["estimator"]
    # 10 wrong of 2000 (0.5%) backs 1% with everything answered
    assert policy.certificate["feasible"] and policy.threshold == 1999 / 2000
    forced = calibrate(raw, truths, 0.01, 0.1, score="estimator")
    assert forced.score == "estimator"
    # every signal is certified on the same answers, so signals compare at the asked alpha:
    # noise that spreads 10 errors over 2000 still backs 1% answering all (0.5% < 1%)
    assert policy.thresholds["max_prob"] == policy.threshold
    assert forced.thresholds == policy.thresholds
    # at 0.4% only max_prob, which puts the errors last, answers (up to its first error)
    strict = calibrate(raw, truths, 0.004, 0.1)
    assert 0.9 < strict.thresholds["max_prob"] < 1990 / 2000
    assert strict.thresholds["estimator"] == strict.thresholds["entropy"] == ANSWER_NOTHING
    assert aurc(np.arange(4.0), np.array([0, 0, 0, 1])) == pytest.approx((0 + 0 + 0 + 0.25) / 4)


def test_the_guarantee_reaches_questions_no_more_novel_than_the_calibration_ones() -> None:
    rng = np.random.default_rng(1)
    raw = [
        replace(_answer("yes", 0.1, float(rng.random()), 0.1), novelty=n)
        for n in [0.0] * 1990 + [0.01] * 10
    ]
    policy = calibrate(raw, ["yes"] * 2000, 0.01, 0.1)
    assert policy.certificate["feasible"] and policy.novelty_limit == 0.01
    assert policy.routing()["novelty_limit"] == 0.01
    assert policy.reaches(replace(raw[0], novelty=0.01))
    assert not policy.reaches(replace(raw[0], novelty=0.2))  # worded unlike any of them
    assert not policy.reaches(replace(raw[0], novelty=None))
    # a question the model could not read has no novelty; the rest still set the limit
    assert novelty_limit([*raw, replace(raw[0], novelty=None)]) == 0.01
    # a guide that cannot tell novelty: the guarantee reaches as it did before
    assert novelty_limit([replace(a, novelty=None) for a in raw]) is None
    assert replace(policy, novelty_limit=None).reaches(replace(raw[0], novelty=None))
    # no certificate, no guarantee, however familiar the wording
    assert not AbstainPolicy(0.5).reaches(raw[0])


def test_an_answer_the_guide_refused_is_neither_certified_nor_scored_as_given() -> None:
    """Serving turns an answer the guide refuses into ``unknown``; calibration and evaluation
    judge what serving gives, not what the model wrote (a covenant 'breached' computed from
    revenue less itself was counted as a hallucination the served model never said)."""
    refused = replace(_answer("yes", 0.1, 0.1, 0.1), text="unknown", abstained=True, error="twice")
    plain, wrong = _answer("no", 0.1, 0.1, 0.1), _answer("yes", 0.1, 0.1, 0.1)
    answers, truths = [refused, plain, wrong], ["unknown", "no", "no"]
    missed, attempted = selective_outcomes(answers, truths)
    assert list(attempted) == [False, True, True] and list(missed) == [False, False, True]
    assert [a.offered for a in answers] == ["unknown", "no", "yes"]
    assert apply_policy(answers, AbstainPolicy()) == ["unknown", "no", "yes"]
    assert apply_policy(answers, AbstainPolicy(threshold=0.05)) == ["unknown"] * 3
    figures = selective_figures(
        answers, truths, apply_policy(answers, AbstainPolicy()), AbstainPolicy()
    )
    # the refused answer is coverage lost, never a hallucination
    assert figures["coverage"] == pytest.approx(2 / 3)
    assert figures["selective_risk"] == pytest.approx(1 / 2)
