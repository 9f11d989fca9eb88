"""The derivation language: exact results, the world model's canonical forms, clear refusals."""

import pytest

from worldgen.calc import CalcError, compute, may_decide_despite_gaps
from worldgen.dataset import generate_block
from worldgen.domains import domain_names, get_domain
from worldgen.plan import decode_plan
from worldgen.render import decides
from worldgen.render_checks import answer_mismatches

from .blocks import rendered_block


@pytest.mark.parametrize(
    ("derivation", "value"),
    [
        ("17203888.06 - 11992130.54", "5211757.52"),  # exact cents, no float error
        ("0.10 + 0.20", "0.30"),
        ("100.00 - -5.00", "105.00"),
        ("(1.00 - 2.50) * 2", "-3.00"),
        ("days(2014-06-11, 2019-12-09)", "2007"),
        ("add_years(2016-02-29, 3)", "2019-02-28"),  # 29 February -> 28 February
        ("add_years(2016-02-29, 4)", "2020-02-29"),
        ("age(1928-05-09, 2018-04-24)", "89"),
        ("age(1928-04-24, 2018-04-24)", "90"),
        ("round(8979865.89 / 1057147.69, 2)", "8.49"),
        ("round(1.005, 2)", "1.01"),  # half up, exactly
        ("floor(max(100.00 - 200.00, 0) * 0.21, 2)", "0.00"),  # no tax on a loss
        ("floor(99.99 * 0.21, 2)", "20.99"),
        ("rint(2.5)", "2"),  # half to even, as numpy.rint
        ("2019-12-09 > add_years(2014-06-11, 6)", "no"),
        ("151 >= 130 or 97 >= 80", "yes"),
        ("30.6 >= 30 and no", "no"),
        ("not 1 < 2", "no"),
        ("gfr_stage(90)", "stage 1"),  # KDIGO: G1 from 90, G3a 45-59, G5 below 15
        ("gfr_stage(59)", "stage 3a"),
        ("gfr_stage(44)", "stage 3b"),
        ("gfr_stage(14)", "stage 5"),
        ("52 >= 30 and indicated(metformin, 'type 2 diabetes')", "yes"),
        ("limitation('Texas', 'fraud')", "4"),  # the statute table, labels as stated
        ("add_years(2019-09-28, limitation('New York', 'negligence'))", "2022-09-28"),
        ("52 >= 30 and indicated(metformin, ' hypertension')", "no"),  # as a pointer decodes
        ("elements('negligence', yes, yes, yes, yes)", "yes"),
        ("elements('defamation', no, yes, yes, yes)", "yes"),  # defamation needs no duty
        ("elements('defamation', unstated, yes, yes, yes)", "yes"),  # so its gap cannot matter
        ("elements('breach of oral contract', yes, unstated, no, no)", "no"),  # damages unproven
        ("elements('unstated', yes, no, yes, yes)", "no"),  # every claim needs a breach
        ("liable(yes and not no and not no)", "liable"),
        ("liable(unstated and not yes and not unstated)", "not liable"),  # barred decides it
        (
            "rint(142 * min(1.07 / 0.7, 1) ** -0.241 * max(1.07 / 0.7, 1) ** -1.2 * 0.9938 ** 89 * 1.012)",
            "50",
        ),
    ],
)
def test_derivations_compute_exactly(derivation: str, value: str) -> None:
    assert compute(derivation) == value


@pytest.mark.parametrize(
    ("derivation", "needle"),
    [
        ("1 +", "ends too early"),
        ("1 2", "unexpected '2'"),
        ("explode(1)", "unknown function 'explode'"),
        ("1 / 0", "cannot compute"),
        ("days(2014-06-11, 5)", "cannot compute"),
        ("1 $ 2", "cannot read"),
        ("(1 + 2", "ends too early"),
        ("add_years(5, 2016-02-29)", "cannot compute"),  # arguments swapped
        ("limitation('Ohio', 'fraud')", "no limitation period known for 'fraud' in 'ohio'"),
        ("limitation('Texas', 'unstated')", "does not state"),
        ("age(2016-02-29)", "cannot compute"),
        ("121 >= 130 or unstated >= 80", "does not state"),
        ("26.6 < 30 and unstated", "does not state"),  # never read as a truthy word
        ("52 >= 30 and indicated(metformin, 'unstated')", "does not state"),
        ("indicated(aspirin, 'healthy')", "no indications known for 'aspirin'"),
        ("elements('negligence', yes, unstated, yes, yes)", "does not state"),  # a required gap
        ("elements('unstated', no, yes, yes, yes)", "does not state"),  # defamation needs no duty
        ("elements('arson', yes, yes, yes, yes)", "no elements known for 'arson'"),
        ("elements('fraud', yes, yes)", "takes the claim and 4 findings"),
        ("elements('fraud', yes, 3, yes, yes)", "a finding is yes or no"),
        ("elements('defamation', 3, yes, yes, yes)", "a finding is yes or no"),  # not required
        ("liable(unstated and not no and not no)", "does not state"),
        ("liable(2019-12-09)", "a finding is yes or no"),
    ],
)
def test_bad_derivations_are_refused_in_one_line(derivation: str, needle: str) -> None:
    with pytest.raises(CalcError) as err:
        compute(derivation)
    assert needle in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("domain", domain_names())
def test_every_derivation_computes_to_its_answer(domain: str) -> None:
    qa = generate_block(domain, 1500, 0, 0)["qa"]
    derived = qa[(qa["derivation"] != "") & (qa["kind"] != "unknown")]
    assert len(derived) > 0.3 * len(qa)  # arithmetic and rule questions carry their derivation
    assert set(derived["kind"]) <= {"lookup", "derived", "multistep"}
    # a yes/no rule question reads a stated finding off; a stated fact or figure is written
    lookup = qa[qa["kind"] == "lookup"]
    read_off = lookup["derivation"] != ""
    assert lookup.loc[read_off, "answer"].isin(["yes", "no"]).all()
    assert (lookup.loc[lookup["key"].str.startswith("lookup_"), "derivation"] == "").all()
    computed = [compute(d) for d in derived["derivation"]]
    assert computed == derived["answer"].tolist()


def test_a_stated_finding_is_read_off_with_the_negation_the_question_asks() -> None:
    qa = generate_block("legal", 1500, 0, 0)["qa"]
    lookup = qa[qa["kind"] == "lookup"].set_index("key")["derivation"]
    assert set(lookup.loc[["time_barred"]]) <= {"yes", "no"}
    assert set(lookup.loc[["filed_in_time"]]) <= {"not yes", "not no"}
    assert set(lookup.loc[["plaintiff_won"]]) <= {
        "'liable' == 'liable'",
        "'not liable' == 'liable'",
    }


@pytest.mark.parametrize("domain", domain_names())
def test_unknown_answers_mark_what_the_document_does_not_state(domain: str) -> None:
    qa = generate_block(domain, 1500, 0, 0)["qa"]
    unknown = qa[qa["kind"] == "unknown"]
    marked = unknown[unknown["derivation"] != ""]
    assert 0.15 * len(unknown) < len(marked) < len(unknown)  # rules; not lookups
    assert (unknown["answer"] == "unknown").all()
    for derivation in marked["derivation"]:
        assert "unstated" in derivation
        with pytest.raises(CalcError, match="does not state"):
            compute(derivation)


@pytest.mark.parametrize(
    ("derivation", "value"),
    [
        ("26.6 >= 30 and unstated", "no"),
        ("unstated >= 30 and indicated(metformin, 'healthy')", "no"),
        ("135 >= 130 or unstated >= 80", "yes"),
        ("not (unstated and no)", "yes"),
    ],
)
def test_a_gap_that_cannot_change_the_result_is_decided(derivation: str, value: str) -> None:
    """Kleene's logic: ``no and unstated`` is ``no`` whatever the missing value is."""
    assert compute(derivation) == value


@pytest.mark.parametrize(
    "derivation",
    ["unstated or no", "not unstated", "yes and unstated", "unstated + 1 > 2 or no", "-unstated"],
)
def test_a_gap_that_can_change_the_result_is_not(derivation: str) -> None:
    with pytest.raises(CalcError, match="does not state"):
        compute(derivation)


def _computes(derivation: str) -> bool:
    try:
        compute(derivation)
    except CalcError:
        return False
    return True


@pytest.mark.parametrize("domain", domain_names())
def test_deciding_skips_the_parser_only_where_a_gap_must_reach_the_result(domain: str) -> None:
    """``decides`` answers without parsing when nothing reads a gap (no and / or / Kleene
    function); over every gapped derivation a block writes, it agrees with computing."""
    qa = generate_block(domain, 1500, 0, 0)["qa"]
    gapped = [d for d in qa["derivation"] if "unstated" in d]
    gapped += ["days(2016-02-15, unstated)", "unstated - 5.00", "not unstated", "UNSTATED or NO"]
    assert any(not may_decide_despite_gaps(d) for d in gapped)
    assert [decides(d) for d in gapped] == [_computes(d) for d in gapped]


def test_a_rule_marks_each_missing_fact_where_it_would_be_used() -> None:
    """Metformin's rule points at the eGFR and the diagnosis; each missing one is marked."""
    question = get_domain("medical").renderer.question("metformin_eligible")
    row = {"diagnosis": "type 2 diabetes", "egfr": 52, "sex": "female"}
    rule = "{} >= 30 and indicated(metformin, '{}')"
    unknown = question.resolve(row, {"egfr": "52"})
    assert (unknown.kind, unknown.derivation) == ("unknown", rule.format(52, "unstated"))
    # not indicated whatever the eGFR: decided despite the gap, so not unknown
    healthy = {**row, "diagnosis": "healthy"}
    decided = question.resolve(healthy, {"diagnosis": "healthy"})
    assert decided.derivation == rule.format("unstated", "healthy")
    assert decided.kind == "derived" and question.expected(healthy, decided) == "no"
    full = question.resolve(row, {"egfr": "52", "diagnosis": "healthy"})
    assert full.derivation == rule.format(52, "healthy")


def test_a_tampered_derivation_is_a_mismatch() -> None:
    b = rendered_block("financial", 200)
    qas = b.qa.to_dict("records")
    assert answer_mismatches(b.domain.renderer, b.rows, b.plans, qas) == []
    victim = next(q for q in qas if " - " in q["derivation"])  # one the tamper changes
    victim["derivation"] = victim["derivation"].replace(" - ", " + ", 1)
    assert answer_mismatches(b.domain.renderer, b.rows, b.plans, qas) == [victim["record_id"]]
    assert decode_plan(b.plans[victim["record_id"]])  # the document itself is untouched
