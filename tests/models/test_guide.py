"""The guide's second net: a label question answered with another question's label."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from models.guide import (
    ARITHMETIC,
    GUIDE,
    Guide,
    answer_constants,
    answer_dates,
    answer_decimals,
    answer_figures,
    answer_labels,
    answer_places,
    answer_twice,
    comparison_constants,
    figure_places,
    word_pairs,
)

DOC = "Roe v. Acme. The plaintiff sued for negligence under Texas law."
GUIDE_ = Guide(
    questions={
        "legal": [
            "What is the cause of action?",
            "Which law governs the case?",
            "How much of the claim was not awarded?",
            "What was the balance owed?",
            "When was the complaint filed?",
        ]
    },
    marks={"legal": ["plaintiff"]},
    keys={"legal": ["claim_type", "jurisdiction", "unawarded", "balance", "filed"]},
    labels={"claim_type": ["fraud", "negligence", "unknown"], "jurisdiction": ["texas"]},
    figures={"unawarded": False, "balance": True, "filed": False},
    dated={"unawarded": False, "filed": True},
)


def test_labels_are_kept_only_for_questions_whose_answers_are_labels() -> None:
    keys = ["claim_type", "claim_type", "amount", "amount", "sex", "sex"]
    answers = ["negligence", "Fraud", "250000.00", "unknown", "female", "male"]
    assert answer_labels(keys, answers) == {
        "claim_type": ["fraud", "negligence"],
        "sex": ["female", "male"],
    }


def test_another_question_s_label_is_refused_with_the_reason() -> None:
    asked = "What is the cause of action?"
    assert GUIDE_.asked_key(DOC, asked) == "claim_type"
    reason = GUIDE_.why_not_answer(DOC, asked, "Texas")
    assert reason is not None and "'Texas'" in reason and "claim_type: fraud, negligence" in reason
    assert GUIDE_.why_not_answer(DOC, asked, "Negligence") is None
    assert GUIDE_.why_not_answer(DOC, "Which law governs the case?", "Texas") is None
    # a question no form is close to, or a document of no trained kind: nothing to compare with
    assert GUIDE_.why_not_answer(DOC, "How much was claimed?", "Texas") is None
    assert GUIDE_.why_not_answer("A clinic note.", "What is the cause of action?", "x") is None


def test_a_guide_written_before_labels_refuses_no_answer(tmp_path: Path) -> None:
    GUIDE_.save(tmp_path)
    assert Guide.load(tmp_path) == GUIDE_
    data = json.loads((tmp_path / GUIDE).read_text())
    del data["keys"], data["labels"], data["figures"], data["dated"]
    (tmp_path / GUIDE).write_text(json.dumps(data))
    old = Guide.load(tmp_path)
    assert old is not None and old.why_not_answer(DOC, "What is the cause of action?", "x") is None


def test_a_figure_question_answers_a_figure_and_a_negative_one_only_if_training_had_one() -> None:
    keys = ["unawarded", "unawarded", "balance", "balance", "filed", "stage", "stage"]
    answers = ["70000.00", "unknown", "-350.00", "12.5", "2021-04-15", "stage 3b", "unknown"]
    assert answer_figures(keys, answers) == {"unawarded": False, "balance": True, "filed": False}
    unawarded, balance = "How much of the claim was not awarded?", "What was the balance owed?"
    assert GUIDE_.why_not_answer(DOC, unawarded, "70000.00") is None
    assert "is negative" in (GUIDE_.why_not_answer(DOC, unawarded, "-70000.00") or "")
    assert GUIDE_.why_not_answer(DOC, balance, "-350.00") is None
    assert "is not a figure" in (GUIDE_.why_not_answer(DOC, balance, "type 2 diabetes") or "")
    assert GUIDE_.why_not_answer(DOC, balance, "unknown") is None


def test_a_date_answers_only_a_question_training_answered_with_dates() -> None:
    keys = ["age", "age", "filed", "filed", "mixed", "mixed", "sector"]
    answers = ["63", "unknown", "2021-04-15", "2019-03-03", "2021-04-15", "774", "retail"]
    assert answer_dates(keys, answers) == {"age": False, "filed": True}
    unawarded, filed = "How much of the claim was not awarded?", "When was the complaint filed?"
    # the visit's date given as an age (a "58-year-old woman" seen on 2023-02-03), at 0.98
    reason = GUIDE_.why_not_answer(DOC, unawarded, "2023-02-03") or ""
    assert "is a date" in reason and "unawarded is answered with a number" in reason
    assert "is not a date" in (GUIDE_.why_not_answer(DOC, filed, "774") or "")
    assert GUIDE_.why_not_answer(DOC, filed, "2021-04-15") is None
    assert GUIDE_.why_not_answer(DOC, unawarded, "70000.00") is None
    # "balance" has no recorded shape (a guide from before, or a key with both): not checked
    assert GUIDE_.why_not_answer(DOC, "What was the balance owed?", "2021-04-15") is None


def test_a_guide_answers_the_same_after_its_memo_is_emptied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import models.guide as guide_module

    guide = Guide(
        GUIDE_.questions, GUIDE_.marks, GUIDE_.keys, GUIDE_.labels, GUIDE_.figures, GUIDE_.dated
    )
    monkeypatch.setattr(guide_module, "MEMO_SIZE", 2)
    asked = ["What is the cause of action?", "Which law governs the case?", "How much was claimed?"]
    first = [(guide.why_not(DOC, q), guide.asked_key(DOC, q)) for q in asked * 2]
    assert all(len(memo) <= 2 for memo in guide._memo.values())
    assert first[:3] == first[3:]
    assert [key for _, key in first[:3]] == ["claim_type", "jurisdiction", None]
    assert first[0][0] is None and first[2][0] is not None
    assert guide.why_not("A clinic note.", asked[0]) == (
        "the document is none of the kinds the model was trained on"
    )


def test_a_lead_in_training_never_wrote_does_not_hide_a_trained_question() -> None:
    guide = Guide(
        questions={
            "legal": [
                "What is the cause of action?",
                "According to the document, what is the cause of action?",
                "What was the balance owed, in dollars?",
                "According to the document, what was the balance owed, in dollars?",
                "Which law governs the case?",
                "According to the document, which law governs the case?",
            ]
        },
        marks={"legal": ["plaintiff"]},
        keys={"legal": ["claim_type"] * 2 + ["balance"] * 2 + ["jurisdiction"] * 2},
    )
    for lead_in in ("From the record:", "Reading the file,", "Per the docket."):
        asked = f"{lead_in} What was the balance owed, in dollars?"
        assert guide.core(("legal",), asked) == "What was the balance owed, in dollars?"
        assert guide.why_not(DOC, asked) is None
        assert guide.asked_key(DOC, asked) == "balance"
    # a lead-in that names what is asked stays, and so does a question training never asked
    assert guide.why_not(DOC, "For the law firm, what was the balance owed?") is not None
    assert guide.why_not(DOC, "From the record: what was the plaintiff's age?") is not None
    # a guide without question keys cannot tell what names a question: read as written
    unkeyed = Guide(GUIDE_.questions, GUIDE_.marks)
    assert unkeyed.core(("legal",), "From the record: Which law governs the case?") == (
        "From the record: Which law governs the case?"
    )


@pytest.mark.parametrize(
    ("asked", "read"),
    [
        (
            "Report the balance owed. Answer from the document only.",
            "Answer from the document only. Report the balance owed.",
        ),
        (
            "Please be brief. Name the cause of action.",
            "Please be brief. Name the cause of action.",
        ),
        ("Report the balance owed.", "Report the balance owed."),
        # a question mark says where the question is (tokenizer.question_last moves the rest)
        ("What is the cause of action? Be brief.", "What is the cause of action? Be brief."),
    ],
)
def test_a_request_without_a_question_mark_is_read_with_its_request_last(
    asked: str, read: str
) -> None:
    guide = Guide(
        questions={"legal": ["Report the balance owed.", "Name the cause of action."]},
        marks={"legal": ["plaintiff"]},
    )
    assert guide.question_sentence_last(DOC, asked) == read
    # a document of no trained kind has no forms to compare with: the request stays as written
    assert guide.question_sentence_last("A clinic note.", asked) == asked


def test_novelty_is_the_share_of_word_pairs_training_never_wrote(tmp_path: Path) -> None:
    assert word_pairs("BP 150/88.") == {"bp #", "# /", "/ #", "# ."}
    trained = "Blood pressure was 150/88 mmHg. What is the systolic pressure?"
    guide = Guide({}, {}, pairs=sorted(word_pairs(trained)))
    # the same wording with other values is not novel: numbers are any number
    assert guide.novelty("Blood pressure was 128/76 mmHg.", "What is the systolic pressure?") == 0
    reworded = guide.novelty("BP 128/76, sitting.", "What is the systolic pressure?")
    assert reworded is not None and 0.3 < reworded < 1
    guide.save(tmp_path)
    assert Guide.load(tmp_path) == guide
    # a guide written before it kept word pairs cannot tell novelty
    assert Guide({}, {}).novelty("BP 128/76.", "Systolic?") is None


def test_a_derivation_that_reads_one_value_as_two_is_refused_where_training_never_did() -> None:
    keys = ["age", "age", "days_to_file", "days_to_file", "egfr"]
    derivations = [
        "age(1958-06-02, 2022-03-14)",
        "age(unstated, unstated)",  # a value the document does not state is not a value
        "days(2013-05-28, 2013-05-28)",  # an incident and a filing on one day
        "days(2019-03-03, 2021-04-15)",
        "rint(142 * min(0.9 / 0.7, 1) ** -0.241 * 0.9938 ** age(1958-06-02, 2022-03-14))",
    ]
    twice = answer_twice(keys, derivations)
    assert twice == {"age": [], "days_to_file": ["days"], "egfr": []}
    guide = Guide(
        questions={"medical": ["How old was the patient?", "What is the eGFR?"]},
        marks={"medical": ["patient"]},
        keys={"medical": ["age", "egfr"]},
        twice=twice,
    )
    note = "Clinic note, 14 March 2022. Patient: female, born June 2, 1958."
    read_twice = "age(1958-06-02, 1958-06-02)"
    reason = guide.why_not_answer(note, "How old was the patient?", "0", read_twice)
    assert reason is not None and "age(1958-06-02, 1958-06-02) reads one value as two" in reason
    inner = "rint(142 * min(0.9 / 0.7, 1) ** -0.241 * 0.9938 ** age(1958-06-02, 1958-06-02))"
    assert guide.why_not_answer(note, "What is the eGFR?", "106", inner) is not None
    assert guide.why_not_answer(note, "How old was the patient?", "63", derivations[0]) is None
    assert guide.why_not_answer(note, "How old was the patient?", "unknown", derivations[1]) is None
    # min(0.9 / 0.7, 1): two arguments that differ; and a guide without the record refuses none
    assert guide.why_not_answer(note, "What is the eGFR?", "72", derivations[4]) is None
    assert (
        replace(guide, twice={}).why_not_answer(note, "How old was the patient?", "0", inner)
        is None
    )


def test_a_figure_used_twice_in_arithmetic_is_refused_where_training_never_did() -> None:
    """EBIT as revenue less operating expenses twice (a hand-written note's cost of goods read
    as its operating expenses, at 0.96): refused for a key whose training derivations never use
    one figure twice, let be for one whose do (a full award: nothing unawarded), and zeros
    (no dividends, no tax) are no figure read twice."""
    keys = ["operating_income", "unawarded_cents", "unawarded_cents", "net_income"]
    derivations = [
        "3750000.00 - 2100000.00 - 900000.00",
        "250000.00 - 250000.00",
        "250000.00 - 180000.00",
        "1200000.00 - 0.00 - 0.00",
    ]
    twice = answer_twice(keys, derivations)
    assert twice == {
        "net_income": [],
        "operating_income": [],
        "unawarded_cents": [ARITHMETIC],
    }
    guide = Guide(
        questions={"financial": ["What was operating income?", "How much was not awarded?"]},
        marks={"financial": ["revenue"]},
        keys={"financial": ["operating_income", "unawarded_cents"]},
        twice=twice,
    )
    note = "FY summary. Revenue $3.75M, cost of goods sold $2.1M, operating expenses $900K."
    ebit = "3750000.00 - 900000.00 - 900000.00"
    reason = guide.why_not_answer(note, "What was operating income?", "1950000.00", ebit)
    assert reason is not None and "900000.00 twice reads one value as two" in reason
    assert (
        guide.why_not_answer(note, "What was operating income?", "750000.00", derivations[0])
        is None
    )
    full = guide.why_not_answer(note, "How much was not awarded?", "0.00", derivations[1])
    assert full is None


def test_a_figure_where_training_never_put_one_of_its_shape_is_refused(tmp_path: Path) -> None:
    """The BMI read as the systolic pressure (``26.2 >= 130``, at 0.97 on held-out phrasing)
    and a count read as an asset in a sum of amounts: refused, with the figure and where it
    stands; the same derivations over figures of training's shapes are let be, and so is any
    derivation under a guide written before places were kept."""
    keys = ["hypertensive_range", "hypertensive_range", "total_assets"]
    derivations = [
        "134 >= 130 or 84 >= 80",
        "unstated >= 130 or 91 >= 80",  # an unstated value is no figure
        "113467510.63 + 136447467.02 - 1941702.55",
    ]
    places = answer_places(keys, derivations)
    assert places == {
        "hypertensive_range": [">= 0dp", "^ 0dp", "or 0dp"],
        "total_assets": ["+ 2dp", "- 2dp", "^ 2dp"],
    }
    assert figure_places("26.2 >= 130 or 70 >= 80") == {
        "^ 1dp": "26.2",
        ">= 0dp": "130",
        "or 0dp": "70",
    }
    guide = Guide(
        questions={
            "medical": ["Is the blood pressure in the hypertensive range?"],
            "financial": ["What were total assets?"],
        },
        marks={"medical": ["patient"], "financial": ["revenue"]},
        keys={"medical": ["hypertensive_range"], "financial": ["total_assets"]},
        places=places,
    )
    note = "Patient seen today. BMI 26.2, BP unrecorded, diastolic 70."
    asked = "Is the blood pressure in the hypertensive range?"
    reason = guide.why_not_answer(note, asked, "no", "26.2 >= 130 or 70 >= 80")
    assert reason is not None
    assert "26.2 is a number with 1 decimal at the start" in reason
    assert "hypertensive_range's derivations in training never put one" in reason
    assert guide.why_not_answer(note, asked, "yes", "142 >= 130 or 70 >= 80") is None
    guide.save(tmp_path)  # served as written at training
    assert Guide.load(tmp_path) == guide
    books = "Revenue $1.2M. Cash $58,175,122.60 across 4 branches."
    count = guide.why_not_answer(books, "What were total assets?", "58175126.60", "58175122.60 + 4")
    assert count is not None and "4 is a whole number after '+'" in count
    sum_ = "58175122.60 + 1000.00"
    assert guide.why_not_answer(books, "What were total assets?", "58176122.60", sum_) is None
    before = replace(guide, places={})  # a guide written before places were kept
    assert before.why_not_answer(note, asked, "no", "26.2 >= 130 or 70 >= 80") is None
    assert (
        before.why_not_answer(books, "What were total assets?", "58175126.60", "58175122.60 + 4")
        is None
    )


def test_a_comparison_with_a_literal_training_never_compared_with_is_refused(
    tmp_path: Path,
) -> None:
    """ "Did the plaintiff win?" compares the stated judgment with ``'liable'`` in training; the
    judgment copied as the constant too (``'not liable' == ' not liable'``, yes at 0.9 and more on
    seed 0) is refused, the read-off of either judgment let be, and so is everything under a
    guide written before constants were kept."""
    keys = ["plaintiff_won", "plaintiff_won", "total_assets"]
    derivations = ["'liable' == 'liable'", "'not liable' == 'liable'", "12.00 + 3.00"]
    constants = answer_constants(keys, derivations)
    assert constants == {"plaintiff_won": ["== 'liable'"], "total_assets": []}
    assert comparison_constants("' not liable' == ' not liable'") == ["== 'not liable'"]
    guide = Guide(
        questions={"legal": ["Did the plaintiff win?"]},
        marks={"legal": ["plaintiff"]},
        keys={"legal": ["plaintiff_won"]},
        constants=constants,
    )
    doc = "Roe v. Acme. Judgment: the defendant is not liable. The plaintiff appealed."
    asked = "Did the plaintiff win?"
    reason = guide.why_not_answer(doc, asked, "yes", "' not liable' == ' not liable'")
    assert reason is not None and "== 'not liable' compares with a literal" in reason
    for read_off, answer in (("' not liable' == 'liable'", "no"), ("'liable' == ' liable'", "yes")):
        assert guide.why_not_answer(doc, asked, answer, read_off) is None
    guide.save(tmp_path)
    assert Guide.load(tmp_path) == guide
    before = replace(guide, constants={})  # a guide written before constants were kept
    assert before.why_not_answer(doc, asked, "yes", "' not liable' == ' not liable'") is None


def test_a_number_computed_with_decimals_training_never_computed_is_refused(
    tmp_path: Path,
) -> None:
    """An interest coverage written ``round(..., 3)`` (2.515 at 0.97 on seed 0) or ``round(...,
    1)`` where training always rounds to 2: refused; its training rounding let be, and so is a
    figure stated and answered as the document writes it (no derivation), and everything under
    a guide written before decimals were kept. Keys whose derivations compute labels or dates
    keep none."""
    keys = ["interest_coverage", "interest_coverage", "ruling", "lookup_bmi", "filing_deadline"]
    answers = ["11.20", "unknown", "liable", "31.4", "2020-04-12"]
    derivations = [
        "round(1120.00 / 100.00, 2)",
        "round(unstated / 100.00, 2)",
        "liable(yes and not no)",
        "",
        "add_years(2018-04-12, 2)",
    ]
    decimals = answer_decimals(keys, answers, derivations)
    assert decimals == {"interest_coverage": [2]}
    guide = Guide(
        questions={"financial": ["What was the interest coverage?"]},
        marks={"financial": ["revenue"]},
        keys={"financial": ["interest_coverage"]},
        decimals=decimals,
    )
    books = "Revenue $15.8M. Operating income $7.2M. Interest expense $2.9M."
    asked = "What was the interest coverage?"
    three = guide.why_not_answer(books, asked, "2.515", "round(7207826.15 / 2866482.16, 3)")
    assert three is not None and "'2.515' has 3 decimals" in three and "compute 2" in three
    one = guide.why_not_answer(books, asked, "2.5", "round(7207826.15 / 2866482.16, 1)")
    assert one is not None and "'2.5' has 1 decimal," in one
    assert guide.why_not_answer(books, asked, "2.51", "round(7207826.15 / 2866482.16, 2)") is None
    assert guide.why_not_answer(books, asked, "2.515", "") is None  # stated, as written
    guide.save(tmp_path)
    assert Guide.load(tmp_path) == guide
    before = replace(guide, decimals={})  # a guide written before decimals were kept
    assert before.why_not_answer(books, asked, "2.515", "round(7.2 / 2.86, 3)") is None
