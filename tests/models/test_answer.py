"""What a model wrote -> the answer and the derivation an auditor reads."""

from __future__ import annotations

import pytest

from models.answer import UNKNOWN, resolve


@pytest.mark.parametrize(
    ("written", "answer", "derivation"),
    [
        ("= round( 8.0 / 2, 2)", "4.00", "round(8.0 / 2, 2)"),
        (
            "= add_years(2019-11-27, limitation(' california', ' negligence'))",
            "2021-11-27",
            "add_years(2019-11-27, limitation('california', 'negligence'))",
        ),
        (
            "= 52 >= 30 and indicated(metformin, ' prediabetes')",
            "yes",
            "52 >= 30 and indicated(metformin, 'prediabetes')",
        ),
        ("= unstated >= 30 and yes", UNKNOWN, "unstated >= 30 and yes"),
        ("= unstated >= 30 and no", "no", "unstated >= 30 and no"),  # decided despite the gap
        ("stage 3a", "stage 3a", ""),
    ],
)
def test_resolve_computes_and_tidies_the_derivation(
    written: str, answer: str, derivation: str
) -> None:
    assert resolve(written) == (answer, derivation)


@pytest.mark.parametrize(
    ("written", "derivation"),
    [
        ("= 120 - 30", "120 - 30"),  # the head of "120 - 30 - 5" computes, to a wrong figure
        ("stage 3", ""),  # the head of "stage 3a" is another stage
        ("= round( 8.0", "round(8.0"),
    ],
)
def test_an_answer_cut_off_before_its_end_is_unknown(written: str, derivation: str) -> None:
    assert resolve(written, finished=False) == (UNKNOWN, derivation)


@pytest.mark.parametrize(
    ("written", "derivation"),
    [("", ""), ("<unk> 2", ""), ("= 120 - <unk>", "120 - <unk>"), ("= <unk> > 2", "<unk> > 2")],
)
def test_an_empty_answer_or_one_with_a_lost_word_is_unknown(written: str, derivation: str) -> None:
    assert resolve(written) == (UNKNOWN, derivation)
