"""The gate's pure statistics: paired bootstrap and McNemar's exact test."""

from __future__ import annotations

import pytest

from registry.gate import (
    PromotionError,
    PromotionPolicy,
    judge,
    mcnemar_exact_p,
    paired_statistics,
)
from tests.registry.conftest import make_report


def _outcomes(correct: set[int], n: int = 200) -> dict[str, str]:
    return {str(i): "correct" if i in correct else "incorrect" for i in range(n)}


def test_bootstrap_ci_and_mcnemar_match_hand_counts() -> None:
    champion = _outcomes(set(range(150)))
    challenger = _outcomes(set(range(10, 175)))  # 25 wins, 10 losses
    stat = paired_statistics(challenger, champion, PromotionPolicy())
    assert (stat["mcnemar_wins"], stat["mcnemar_losses"], stat["n_paired"]) == (25, 10, 200)
    assert stat["accuracy_diff"] == pytest.approx(15 / 200)
    assert stat["mcnemar_p"] == pytest.approx(0.016673847800120715)  # scipy binomtest(25, 35)
    assert 0 < stat["ci_low"] < stat["accuracy_diff"] < stat["ci_high"]
    assert paired_statistics(challenger, champion, PromotionPolicy()) == stat  # seeded


def test_identical_outcomes_give_a_degenerate_ci_and_p_one() -> None:
    same = _outcomes(set(range(170)))
    stat = paired_statistics(same, dict(same), PromotionPolicy())
    assert stat["ci_low"] == stat["ci_high"] == 0.0 and stat["mcnemar_p"] == 1.0


def test_unpaired_outcomes_are_an_error() -> None:
    with pytest.raises(PromotionError, match="not paired"):
        paired_statistics(_outcomes({1}), _outcomes({1}, n=199), PromotionPolicy())


def test_judge_lists_every_failed_floor() -> None:
    report = make_report(range(700), range(700, 820), latency=900.0)
    verdict = judge(report, None, PromotionPolicy())
    assert not verdict.promoted
    assert "accuracy 0.7000" in verdict.reason and "hallucination 0.1200" in verdict.reason
    assert "p95 latency 900.0 ms" in verdict.reason


def test_mcnemar_exact_p_edge_cases() -> None:
    assert mcnemar_exact_p(0, 0) == 1.0 and mcnemar_exact_p(5, 5) == 1.0
    assert mcnemar_exact_p(3, 0) == pytest.approx(0.25) == mcnemar_exact_p(0, 3)
    assert mcnemar_exact_p(4, 7) == pytest.approx(0.548828125)  # scipy binomtest(4, 11)
    assert 0.0 < mcnemar_exact_p(5000, 4000) < 1e-20  # no underflow to 0 or overflow


def test_the_gate_compares_at_one_risk_and_records_the_certificate() -> None:
    certificate = {"alpha": 0.01, "delta": 0.1, "coverage": 0.95, "bound": 0.0093}
    champion = {**make_report(range(850), range(850, 900)), "risk": certificate}
    better = {**make_report(range(900), range(900, 940)), "risk": certificate, "coverage": 0.95}
    verdict = judge(better, champion, PromotionPolicy())
    assert verdict.promoted, verdict.reason
    assert verdict.metrics["challenger"]["risk"] == certificate  # audited with the decision
    looser = {**better, "risk": {**certificate, "alpha": 0.05}}
    verdict = judge(looser, champion, PromotionPolicy())
    assert not verdict.promoted
    assert "abstention certified for another risk (0.05 vs the champion's 0.01)" in verdict.reason


def test_the_floors_apply_to_held_out_phrasing() -> None:
    """A model that reads only its training phrasing is refused, whatever its in-family score."""
    report = make_report(range(900), range(900, 920))
    phrased = make_report(range(600), range(600, 750))
    report["heldout"] = {k: phrased[k] for k in ("accuracy", "hallucination_rate")}
    report["heldout"] |= {"coverage": 0.75, "confident_hallucination": 0.1}
    verdict = judge(report, None, PromotionPolicy(min_heldout_accuracy=0.8))
    assert not verdict.promoted
    assert "held-out phrasing accuracy 0.6000 < floor 0.8000" in verdict.reason
    assert "held-out phrasing hallucination 0.1500 > ceiling" in verdict.reason
    assert "accuracy 0.9000" not in verdict.reason  # in-family clears its floors
    assert verdict.metrics["challenger"]["heldout"]["coverage"] == 0.75
    # by default the ceiling holds there, the accuracy floor is reported and not yet gated
    default = judge(report, None, PromotionPolicy())
    assert not default.promoted and "accuracy" not in default.reason
    report["heldout"] |= {"accuracy": 0.85, "hallucination_rate": 0.02}
    assert judge(report, None, PromotionPolicy(min_heldout_accuracy=0.8)).promoted
