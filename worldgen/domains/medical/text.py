"""Medical documents and questions: ``renderer()`` and its helpers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from worldgen.calc import indicated
from worldgen.distract import Distractor, earlier_date, moved_number
from worldgen.domains.medical.world import (
    ALLOWED_COMPLICATION,
    ALLOWED_MEDICATION,
    EGFR_FLOOR,
    egfr_stage,
)
from worldgen.render import (
    Fact,
    Joint,
    Path,
    Question,
    Renderer,
    Reveal,
    Row,
    Values,
    lookups,
    paths,
    shown,
    stated_field,
    unique_to_one,
    yes_no,
)


def _stage(row: Row) -> str:
    return f"stage {egfr_stage(np.array([row['egfr']]))[0]}"


def _hypertensive(row: Row) -> str:
    # ACC/AHA 2017: stage 1 hypertension from 130 systolic or 80 diastolic.
    return yes_no(row["sbp"] >= 130 or row["dbp"] >= 80)


def _eligible(drug: str) -> Callable[[Row], str]:
    def answer(row: Row) -> str:
        return yes_no(indicated(drug, row["diagnosis"]) and row["egfr"] >= EGFR_FLOOR[drug])

    return answer


AGE_FROM_DATES = "age({birth_date}, {encounter_date})"
# earlier readings a note gives beside today's: a careless reader copies them
DISTRACTORS = (
    Distractor(
        "previous_egfr",
        "egfr",
        ("eGFR at the previous visit was {v} mL/min/1.73m2.", "Prior eGFR: {v}."),
        moved_number("egfr"),
    ),
    Distractor(
        "previous_sbp",
        "sbp",
        ("Systolic pressure at the last visit was {v} mmHg.", "Previous SBP: {v} mmHg."),
        moved_number("sbp"),
    ),
    Distractor(
        "previous_hba1c",
        "hba1c",
        ("HbA1c a year earlier was {v}%.", "Previous HbA1c: {v}%."),
        moved_number("hba1c"),
    ),
    Distractor(
        "previous_creatinine",
        "creatinine",
        ("Creatinine at the previous visit was {v} mg/dL.", "Prior Cr: {v} mg/dL."),
        moved_number("creatinine"),
    ),
    Distractor(
        "previous_visit",
        "encounter_date",
        ("The previous visit was on {v}.", "Previous visit: {v}."),
        earlier_date("encounter_date"),
        kind="date",
    ),
)
# values a note often gives two to a sentence
JOINTS = (
    Joint(
        {"birth_date": "birth", "encounter_date": "the encounter"},
        ("The dates of {roles} were {values}, respectively.",),
    ),
    Joint(
        {"creatinine": "serum creatinine", "glucose": "mean glucose"},
        ("{Roles} were {values} mg/dL, respectively.",),
    ),
    Joint(
        {"sbp": "systolic pressure", "dbp": "diastolic pressure"},
        (
            "{Roles} were {values} mmHg, respectively.",
            "BP {sbp}/{dbp} mmHg.",
            "BP {sbp}/{dbp}.",
            "Blood pressure {sbp}/{dbp} mmHg.",
        ),
    ),
)
AGE_PATHS = ((("age",), "lookup"), (("birth_date", "encounter_date"), "derived", AGE_FROM_DATES))


def _egfr_derivation(age: str) -> Callable[[Values, Row], str]:
    """CKD-EPI 2021 written out over the stated creatinine, with the patient's sex constants."""

    def program(values: Values, row: Row) -> str:
        female = row["sex"] == "female"
        kappa, alpha = ("0.7", "-0.241") if female else ("0.9", "-0.302")
        ratio = f"{values['creatinine']} / {kappa}"
        return (
            f"rint(142 * min({ratio}, 1) ** {alpha} * max({ratio}, 1) ** -1.2"
            f" * 0.9938 ** {age.format_map(values)}{' * 1.012' if female else ''})"
        )

    return program


EGFR_MULTI = (
    (("creatinine", "age", "sex"), "multistep", _egfr_derivation("{age}")),
    (
        ("creatinine", "birth_date", "encounter_date", "sex"),
        "multistep",
        _egfr_derivation(AGE_FROM_DATES),
    ),
)


def _with_egfr(
    extra: tuple[str, ...], rule: Callable[[str, Values], str] | None = None
) -> tuple[Path, ...]:
    """Paths for a rule over eGFR: stated eGFR is one rule; eGFR from creatinine is two.
    ``rule`` writes the derivation around eGFR's own, from the stated values (none: the model
    answers unaided)."""

    def program(egfr: Callable[[Values, Row], str]) -> tuple[Callable[[Values, Row], str], ...]:
        if rule is None:
            return ()
        return (lambda v, r: rule(egfr(v, r), v),)

    stated: Callable[[Values, Row], str] = lambda v, r: v["egfr"]  # noqa: E731
    return paths(
        ((*extra, "egfr"), "derived", *program(stated)),
        *(((*extra, *needs), kind, *program(egfr)) for needs, kind, egfr in EGFR_MULTI),
    )


def _single(allowed: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Diagnoses that allow a single value: stating one states that value."""
    return tuple(d for d, values in allowed.items() if len(values) == 1)


def _medication_decides(drug: str) -> Reveal:
    """The current medication decides eligibility for ``drug`` when every diagnosis it is
    prescribed for agrees: all indicated for ``drug``, at an eGFR floor at least ``drug``'s
    (a patient on metformin may take metformin), or none indicated (on lisinopril, not
    metformin)."""
    decisive = []
    for med in {m for meds in ALLOWED_MEDICATION.values() for m in meds}:
        diagnoses = [d for d, meds in ALLOWED_MEDICATION.items() if med in meds]
        for_drug = [indicated(drug, d) for d in diagnoses]
        floor_ok = EGFR_FLOOR.get(med, 0) >= EGFR_FLOOR[drug]
        if (all(for_drug) and floor_ok) or not any(for_drug):
            decisive.append(med)
    return shown("medication", *sorted(decisive))


def _eligibility_rule(drug: str) -> Callable[[str, Values], str]:
    """eGFR against the drug's floor, and whether the stated diagnosis is one the drug is for
    (``indicated`` in the derivation language): the diagnosis is a value the rule points at."""

    def rule(egfr: str, values: Values) -> str:
        return f"{egfr} >= {EGFR_FLOOR[drug]} and indicated({drug}, '{values['diagnosis']}')"

    return rule


def renderer() -> Renderer:
    facts = (
        Fact(
            "sex",
            ("The patient is {v}.", "Sex: {v}."),
            stated_field("sex"),
            labels=("sex", "patient sex"),
        ),
        Fact(
            "age",
            (
                "The patient is {v} years old.",
                "Age at the visit: {v} years.",
                "{v}-year-old patient.",
            ),
            stated_field("age"),
            withhold_p=0.5,
            kind="number",
            labels=("age", "age at the visit", "patient age"),
            unit="years",
        ),
        Fact(
            "birth_date",
            ("Date of birth: {v}.", "The patient was born on {v}."),
            stated_field("birth_date"),
            kind="date",
            labels=("date of birth", "DOB", "birth date"),
        ),
        Fact(
            "encounter_date",
            ("The encounter took place on {v}.", "Seen in clinic on {v}."),
            stated_field("encounter_date"),
            kind="date",
            labels=("encounter date", "visit date", "date of the visit"),
        ),
        Fact(
            "bmi",
            ("BMI is {v} kg/m2.", "Body-mass index: {v}."),
            stated_field("bmi"),
            kind="number",
            labels=("BMI", "body-mass index"),
            unit="kg/m2",
        ),
        Fact(
            "smoker",
            ("Current smoker: {v}.", "Smoking: {v}."),
            lambda r: yes_no(r["smoker"]),
            labels=("current smoker", "smoker", "tobacco use"),
        ),
        Fact(
            "diagnosis",
            ("Primary diagnosis: {v}.", "Assessment: {v}."),
            stated_field("diagnosis"),
            labels=("primary diagnosis", "diagnosis", "assessment"),
        ),
        Fact(
            "hba1c",
            ("HbA1c was {v}%.", "Glycated haemoglobin measured {v}%."),
            stated_field("hba1c"),
            kind="number",
            labels=("HbA1c", "glycated haemoglobin", "haemoglobin A1c"),
            unit="%",
        ),
        Fact(
            "glucose",
            ("Mean glucose was {v} mg/dL.", "Average plasma glucose: {v} mg/dL."),
            stated_field("glucose"),
            kind="number",
            labels=("mean glucose", "average glucose", "mean plasma glucose"),
            unit="mg/dL",
        ),
        Fact(
            "creatinine",
            ("Serum creatinine was {v} mg/dL.", "Creatinine: {v} mg/dL."),
            stated_field("creatinine"),
            withhold_p=0.1,
            kind="number",
            labels=("serum creatinine", "creatinine", "Cr"),
            unit="mg/dL",
        ),
        Fact(
            "egfr",
            ("eGFR was {v} mL/min/1.73m2.", "Estimated GFR: {v}."),
            stated_field("egfr"),
            withhold_p=0.6,
            kind="number",
            labels=("eGFR", "estimated GFR"),
            unit="mL/min/1.73m2",
        ),
        Fact(
            "sbp",
            ("Systolic pressure {v} mmHg.", "SBP: {v} mmHg."),
            stated_field("sbp"),
            kind="number",
            labels=("systolic pressure", "SBP", "systolic blood pressure"),
            unit="mmHg",
        ),
        Fact(
            "dbp",
            ("Diastolic pressure {v} mmHg.", "DBP: {v} mmHg."),
            stated_field("dbp"),
            kind="number",
            labels=("diastolic pressure", "DBP", "diastolic blood pressure"),
            unit="mmHg",
        ),
        Fact(
            "medication",
            ("Current medication: {v}.", "Prescribed: {v}."),
            stated_field("medication"),
            labels=("current medication", "medication", "prescribed drug"),
        ),
        Fact(
            "complication",
            ("Recorded complication: {v}.", "Complications: {v}."),
            stated_field("complication"),
            labels=("complication", "recorded complication"),
        ),
    )
    # A lookup's answer is the fact exactly as the document states it.
    stated_as = {fact.key: fact.value for fact in facts}
    lookups_ = lookups(
        ("What is the patient's {label}?", "Report the {label}."),
        (
            (key, label, stated_as[key])
            for key, label in (
                ("sex", "sex"),
                ("birth_date", "date of birth"),
                ("encounter_date", "encounter date"),
                ("bmi", "bmi"),
                ("smoker", "smoking status"),
                ("diagnosis", "primary diagnosis"),
                ("hba1c", "hba1c"),
                ("glucose", "mean glucose"),
                ("creatinine", "serum creatinine"),
                ("sbp", "systolic pressure"),
                ("dbp", "diastolic pressure"),
                ("medication", "current medication"),
                ("complication", "recorded complication"),
            )
        ),
        # the prescribing and complication tables tie a diagnosis to what it allows
        {
            "diagnosis": (
                shown("complication", *unique_to_one(ALLOWED_COMPLICATION)),
                shown("medication", *unique_to_one(ALLOWED_MEDICATION)),
            ),
            "medication": (shown("diagnosis", *_single(ALLOWED_MEDICATION)),),
            "complication": (shown("diagnosis", *_single(ALLOWED_COMPLICATION)),),
        },
    )
    derived = (
        Question(
            "age",
            ("How old was the patient at the encounter?",),
            stated_field("age"),
            paths(*AGE_PATHS),
        ),
        Question(
            "egfr",
            ("What is the patient's eGFR?",),
            stated_field("egfr"),
            paths(
                (("egfr",), "lookup"),
                (("creatinine", "age", "sex"), "derived", _egfr_derivation("{age}")),
                # age from the two dates, as the rules over eGFR take it
                (
                    ("creatinine", "birth_date", "encounter_date", "sex"),
                    "multistep",
                    _egfr_derivation(AGE_FROM_DATES),
                ),
            ),
        ),
        Question(
            "ckd_stage",
            ("What CKD stage does the eGFR indicate?", "Which KDIGO GFR stage is the patient in?"),
            _stage,
            _with_egfr((), lambda egfr, _values: f"gfr_stage({egfr})"),
        ),
        Question(
            "metformin_eligible",
            ("Is metformin allowed for this patient?", "Could this patient be given metformin?"),
            _eligible("metformin"),
            _with_egfr(("diagnosis",), _eligibility_rule("metformin")),
            (_medication_decides("metformin"),),
        ),
        Question(
            "empagliflozin_eligible",
            ("Is empagliflozin allowed for this patient?",),
            _eligible("empagliflozin"),
            _with_egfr(("diagnosis",), _eligibility_rule("empagliflozin")),
            (_medication_decides("empagliflozin"),),
        ),
        Question(
            "hypertensive_range",
            ("Is the blood pressure in the hypertensive range?",),
            _hypertensive,
            paths((("sbp", "dbp"), "derived", "{sbp} >= 130 or {dbp} >= 80")),
            # a hypertension diagnosis means systolic >= 140 (the world's BANDS): not unknown
            (shown("diagnosis", "hypertension"),),
        ),
        Question(
            "obese_smoker",
            ("Is the patient an obese smoker?",),
            lambda r: yes_no(r["bmi"] >= 30 and r["smoker"]),
            paths((("bmi", "smoker"), "derived", "{bmi} >= 30 and {smoker}")),
        ),
    )
    return Renderer(
        facts,
        lookups_ + derived,
        {"lookup": 1, "derived": 2, "multistep": 2, "unknown": 1},
        JOINTS,
        DISTRACTORS,
    )
