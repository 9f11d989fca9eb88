"""Medical encounters: demographics and risk factors -> diagnosis -> labs -> treatment.

Real relations (cited):
  * ADAG: estimated average glucose (mg/dL) = 28.7 * HbA1c(%) - 46.7
    (Nathan et al., Diabetes Care 2008;31:1473-8).
  * eGFR by the race-free CKD-EPI 2021 creatinine equation
    (Inker et al., NEJM 2021;385:1737-49); stages G1-G5 per KDIGO 2012.
  * Metformin is contraindicated below eGFR 30 mL/min/1.73m2 (FDA drug safety communication,
    2016); SGLT2 inhibitors are not started below eGFR 20 (KDIGO 2022 diabetes-in-CKD guideline).
Illustrative (not clinical guidance): the risk model linking age, BMI and smoking to diagnoses,
the lab distributions per diagnosis, the ADAG tolerance band (+/- 15 mg/dL) and the
medication/complication tables.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from worldgen.calc import GFR_BOUNDS, GFR_STAGES, indicated
from worldgen.faults import FaultMode, Tables, is_label, pick, record_ids, set_values
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
from worldgen.spec import (
    AllowedPairs,
    Columns,
    Condition,
    ConditionalRange,
    Greater,
    Invariant,
    Recomputed,
    VarDomain,
    Variable,
    WorldSpec,
    choice_by_row,
)

SEXES = ("female", "male")
DIAGNOSES = ("healthy", "prediabetes", "type 2 diabetes", "hypertension", "chronic kidney disease")
MEDICATIONS = ("none", "metformin", "insulin", "empagliflozin", "lisinopril", "amlodipine")
COMPLICATIONS = ("none", "retinopathy", "neuropathy", "nephropathy", "left ventricular hypertrophy")
FEMALE, MALE = 0, 1
HEALTHY, PREDIABETES, T2D, HYPERTENSION, CKD = range(5)
NONE, METFORMIN, INSULIN, EMPAGLIFLOZIN, LISINOPRIL, AMLODIPINE = range(6)

ADAG_TOLERANCE = 15  # mg/dL, illustrative band around the ADAG regression line
EGFR_FLOOR = {"metformin": 30, "empagliflozin": 20}  # FDA 2016; KDIGO 2022
EPOCH_2018 = 17532  # 2018-01-01 as days since 1970-01-01
DAYS_PER_YEAR = 365.25

ALLOWED_MEDICATION = {
    "healthy": ("none",),
    "prediabetes": ("none", "metformin"),
    "type 2 diabetes": ("none", "metformin", "insulin", "empagliflozin"),
    "hypertension": ("none", "lisinopril", "amlodipine"),
    "chronic kidney disease": ("none", "lisinopril", "empagliflozin", "amlodipine"),
}
ALLOWED_COMPLICATION = {
    "healthy": ("none",),
    "prediabetes": ("none",),
    "type 2 diabetes": ("none", "retinopathy", "neuropathy", "nephropathy"),
    "hypertension": ("none", "left ventricular hypertrophy"),
    "chronic kidney disease": ("none", "left ventricular hypertrophy"),
}


def adag_glucose(hba1c: np.ndarray) -> np.ndarray:
    return 28.7 * hba1c - 46.7


def ckd_epi_2021(creatinine: np.ndarray, age: np.ndarray, female: np.ndarray) -> np.ndarray:
    """eGFR (mL/min/1.73m2), rounded to an integer as labs report it."""
    kappa = np.where(female, 0.7, 0.9)
    alpha = np.where(female, -0.241, -0.302)
    ratio = creatinine / kappa
    egfr = (
        142.0
        * np.minimum(ratio, 1.0) ** alpha
        * np.maximum(ratio, 1.0) ** -1.200
        * 0.9938**age
        * np.where(female, 1.012, 1.0)
    )
    return np.rint(egfr).astype(np.int64)


def egfr_stage(egfr: np.ndarray) -> np.ndarray:
    """KDIGO G-stage labels: G1 >= 90, G2 60-89, G3a 45-59, G3b 30-44, G4 15-29, G5 < 15."""
    names = np.array(GFR_STAGES, dtype=object)
    return names[np.searchsorted(GFR_BOUNDS, egfr, side="right")]


# --- structural equations ----------------------------------------------------------------


def _sex(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return (rng.random(n) < 0.49).astype(np.int16)


def _age(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(18, 91, n)


def _bmi(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    base = 24.0 + 0.06 * (p["age"] - 18) + rng.normal(0.0, 4.0, n)
    return np.round(np.clip(base, 16.0, 50.0), 1)


def _smoker(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    rate = np.where(p["sex"] == MALE, 0.24, 0.17) * np.where(p["age"] > 65, 0.6, 1.0)
    return rng.random(n) < rate


def _diagnosis(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    age, bmi, smoker = p["age"], p["bmi"], p["smoker"]
    obese = np.clip((bmi - 25.0) / 10.0, 0.0, 2.0)
    old = (age - 18) / 72.0
    logits = np.stack(
        [
            np.full(n, 1.2),
            0.2 + 0.8 * obese + 0.6 * old,
            -0.4 + 1.2 * obese + 1.0 * old,
            -0.3 + 0.5 * obese + 1.4 * old + 0.5 * smoker,
            -1.6 + 2.0 * old + 0.4 * smoker,
        ],
        axis=1,
    )
    probs = np.exp(logits)
    return choice_by_row(rng, probs)


def _hba1c(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    mean = np.select(
        [p["diagnosis"] == PREDIABETES, p["diagnosis"] == T2D], [6.0, 8.2], default=5.3
    )
    sd = np.where(p["diagnosis"] == T2D, 1.3, 0.3)
    low = np.select([p["diagnosis"] == PREDIABETES, p["diagnosis"] == T2D], [5.7, 6.5], default=4.0)
    high = np.select(
        [p["diagnosis"] == PREDIABETES, p["diagnosis"] == T2D], [6.4, 14.0], default=5.6
    )
    return np.round(np.clip(rng.normal(mean, sd), low, high), 1)


def _glucose(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    noise = rng.integers(-ADAG_TOLERANCE + 3, ADAG_TOLERANCE - 2, n)
    return (np.rint(adag_glucose(p["hba1c"])) + noise).astype(np.int64)


def _creatinine(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    base = np.where(p["sex"] == MALE, 0.95, 0.75) + 0.004 * (p["age"] - 18)
    kidney = np.select(
        [p["diagnosis"] == CKD, p["diagnosis"] == T2D], [rng.lognormal(0.6, 0.45, n), 0.15], 0.0
    )
    return np.round(np.clip(base + kidney + rng.normal(0.0, 0.12, n), 0.4, 12.0), 2)


def _egfr(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return ckd_epi_2021(p["creatinine"], p["age"], p["sex"] == FEMALE)


def _sbp(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    high = np.isin(p["diagnosis"], (HYPERTENSION, CKD))
    sbp = 108 + 0.35 * (p["age"] - 18) + 0.6 * (p["bmi"] - 24) + 22 * high + rng.normal(0, 9, n)
    return np.rint(np.clip(sbp, 90, 220)).astype(np.int64)


def _dbp(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    dbp = 0.55 * p["sbp"] + rng.normal(8, 6, n)
    # Pulse pressure of at least 20 mmHg keeps SBP > DBP by construction.
    return np.rint(np.clip(dbp, 50, p["sbp"] - 20)).astype(np.int64)


def _medication(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    options = np.zeros((n, len(MEDICATIONS)))
    for diag, meds in ALLOWED_MEDICATION.items():
        rows = p["diagnosis"] == DIAGNOSES.index(diag)
        for med in meds:
            options[rows, MEDICATIONS.index(med)] = 0.4 if med == "none" else 1.0
    for med, floor in EGFR_FLOOR.items():
        options[p["egfr"] < floor, MEDICATIONS.index(med)] = 0.0
    return choice_by_row(rng, options)


def _complication(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    options = np.zeros((n, len(COMPLICATIONS)))
    for diag, comps in ALLOWED_COMPLICATION.items():
        rows = p["diagnosis"] == DIAGNOSES.index(diag)
        for comp in comps:
            options[rows, COMPLICATIONS.index(comp)] = 2.0 if comp == "none" else 0.5
    return choice_by_row(rng, options)


def _encounter_date(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return EPOCH_2018 + rng.integers(0, 8 * 365, n)


def _birth_date(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    # floor(age * 365.25) + [1, 364] days keeps floor(days / 365.25) == age exactly.
    days = np.floor(p["age"] * DAYS_PER_YEAR).astype(np.int64) + rng.integers(1, 365, n)
    return p["encounter_date"] - days


def _age_at(c: Columns) -> np.ndarray:
    return np.floor((c["encounter_date"] - c["birth_date"]) / DAYS_PER_YEAR).astype(np.int64)


def _ckd_epi(c: Columns) -> np.ndarray:
    return ckd_epi_2021(c["creatinine"], c["age"], c["sex"] == FEMALE)


def _adag(c: Columns) -> np.ndarray:
    return adag_glucose(c["hba1c"])


def _pairs(table: dict[str, tuple[str, ...]]) -> frozenset[tuple[str, str]]:
    return frozenset((a, b) for a, bs in table.items() for b in bs)


def build() -> WorldSpec:
    cat, num = VarDomain, VarDomain
    variables = [
        Variable("sex", (), _sex, cat("category", categories=SEXES), "sex at birth"),
        Variable("age", (), _age, num("int64", 18, 90, unit="years"), "age at encounter"),
        Variable("bmi", ("age",), _bmi, num("float64", 16, 50, unit="kg/m2"), "body-mass index"),
        Variable("smoker", ("sex", "age"), _smoker, num("bool"), "current smoker"),
        Variable(
            "diagnosis",
            ("age", "bmi", "smoker"),
            _diagnosis,
            cat("category", categories=DIAGNOSES),
            "primary diagnosis",
        ),
        Variable(
            "hba1c",
            ("diagnosis",),
            _hba1c,
            num("float64", 4.0, 14.0, unit="%"),
            "glycated haemoglobin",
        ),
        Variable(
            "glucose",
            ("hba1c",),
            _glucose,
            num("int64", 40, 400, unit="mg/dL"),
            "mean plasma glucose",
        ),
        Variable(
            "creatinine",
            ("sex", "age", "diagnosis"),
            _creatinine,
            num("float64", 0.4, 12.0, unit="mg/dL"),
            "serum creatinine",
        ),
        Variable(
            "egfr",
            ("creatinine", "age", "sex"),
            _egfr,
            num("int64", 1, 200, unit="mL/min/1.73m2"),
            "eGFR, CKD-EPI 2021",
        ),
        Variable(
            "sbp",
            ("age", "bmi", "diagnosis"),
            _sbp,
            num("int64", 40, 250, unit="mmHg"),
            "systolic blood pressure",
        ),
        Variable(
            "dbp", ("sbp",), _dbp, num("int64", 30, 250, unit="mmHg"), "diastolic blood pressure"
        ),
        Variable(
            "medication",
            ("diagnosis", "egfr"),
            _medication,
            cat("category", categories=MEDICATIONS),
            "prescribed medication",
        ),
        Variable(
            "complication",
            ("diagnosis",),
            _complication,
            cat("category", categories=COMPLICATIONS),
            "recorded complication",
        ),
        Variable(
            "encounter_date",
            (),
            _encounter_date,
            num("date", EPOCH_2018, EPOCH_2018 + 8 * 365, unit="date"),
            "encounter date",
        ),
        Variable(
            "birth_date",
            ("encounter_date", "age"),
            _birth_date,
            num("date", -20000, EPOCH_2018 + 8 * 365, unit="date"),
            "date of birth",
        ),
    ]
    invariants = [
        Invariant("bp_ordered", "systolic pressure exceeds diastolic", (Greater("sbp", "dbp"),)),
        Invariant(
            "dates_ordered",
            "birth on or before the encounter",
            (Greater("encounter_date", "birth_date", or_equal=True),),
        ),
        Invariant(
            "age_matches_dates",
            "age equals whole years from birth to encounter",
            (Recomputed("age", ("encounter_date", "birth_date"), _age_at),),
        ),
        Invariant(
            "glucose_adag",
            f"glucose within {ADAG_TOLERANCE} mg/dL of ADAG(HbA1c)",
            (Recomputed("glucose", ("hba1c",), _adag, tolerance=ADAG_TOLERANCE),),
        ),
        Invariant(
            "egfr_ckd_epi",
            "eGFR equals CKD-EPI 2021 of creatinine, age and sex",
            (Recomputed("egfr", ("creatinine", "age", "sex"), _ckd_epi),),
        ),
        Invariant(
            "medication_allowed",
            "medication is indicated for the diagnosis",
            (AllowedPairs("diagnosis", "medication", _pairs(ALLOWED_MEDICATION)),),
        ),
        Invariant(
            "medication_egfr_floor",
            "no drug given below its eGFR threshold",
            tuple(
                ConditionalRange("egfr", Condition("medication", med), low=floor)
                for med, floor in EGFR_FLOOR.items()
            ),
        ),
        Invariant(
            "complication_has_parent",
            "complications only with their parent diagnosis",
            (AllowedPairs("diagnosis", "complication", _pairs(ALLOWED_COMPLICATION)),),
        ),
        Invariant(
            "diabetes_hba1c",
            "type 2 diabetes has HbA1c >= 6.5%",
            (ConditionalRange("hba1c", Condition("diagnosis", "type 2 diabetes"), low=6.5),),
        ),
    ]
    return WorldSpec("medical", "1", variables, invariants)


# --- documents and questions -------------------------------------------------------------


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
        ("{Roles} were {values} mmHg, respectively.",),
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
        Fact("sex", ("The patient is {v}.", "Sex: {v}."), stated_field("sex")),
        Fact(
            "age",
            ("The patient is {v} years old.", "Age at the visit: {v} years."),
            stated_field("age"),
            withhold_p=0.5,
        ),
        Fact(
            "birth_date",
            ("Date of birth: {v}.", "The patient was born on {v}."),
            stated_field("birth_date"),
        ),
        Fact(
            "encounter_date",
            ("The encounter took place on {v}.", "Seen in clinic on {v}."),
            stated_field("encounter_date"),
        ),
        Fact("bmi", ("BMI is {v} kg/m2.", "Body-mass index: {v}."), stated_field("bmi")),
        Fact("smoker", ("Current smoker: {v}.", "Smoking: {v}."), lambda r: yes_no(r["smoker"])),
        Fact(
            "diagnosis", ("Primary diagnosis: {v}.", "Assessment: {v}."), stated_field("diagnosis")
        ),
        Fact(
            "hba1c",
            ("HbA1c was {v}%.", "Glycated haemoglobin measured {v}%."),
            stated_field("hba1c"),
        ),
        Fact(
            "glucose",
            ("Mean glucose was {v} mg/dL.", "Average plasma glucose: {v} mg/dL."),
            stated_field("glucose"),
        ),
        Fact(
            "creatinine",
            ("Serum creatinine was {v} mg/dL.", "Creatinine: {v} mg/dL."),
            stated_field("creatinine"),
            withhold_p=0.1,
        ),
        Fact(
            "egfr",
            ("eGFR was {v} mL/min/1.73m2.", "Estimated GFR: {v}."),
            stated_field("egfr"),
            withhold_p=0.6,
        ),
        Fact("sbp", ("Systolic pressure {v} mmHg.", "SBP: {v} mmHg."), stated_field("sbp")),
        Fact("dbp", ("Diastolic pressure {v} mmHg.", "DBP: {v} mmHg."), stated_field("dbp")),
        Fact(
            "medication",
            ("Current medication: {v}.", "Prescribed: {v}."),
            stated_field("medication"),
        ),
        Fact(
            "complication",
            ("Recorded complication: {v}.", "Complications: {v}."),
            stated_field("complication"),
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
    )


# --- fault modes ---------------------------------------------------------------------------


def _bp_swapped(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    rows = pick(rng, np.ones(len(f), dtype=bool), n)
    sbp, dbp = f["sbp"].to_numpy()[rows], f["dbp"].to_numpy()[rows]
    set_values(f, "sbp", rows, dbp)
    set_values(f, "dbp", rows, sbp)
    return record_ids(f, rows)


def _encounter_before_birth(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    rows = pick(rng, np.ones(len(f), dtype=bool), n)
    # Born the day after the visit: still inside the birth-date domain (encounter dates end a
    # day before its upper bound), but after the encounter and at a negative age.
    born = f["encounter_date"].to_numpy()[rows] + np.timedelta64(1, "D")
    set_values(f, "birth_date", rows, born)
    return record_ids(f, rows)


def _diagnosis_swapped(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    # A healthy patient (no drug, no complication, HbA1c <= 5.6) swaps diagnoses with a
    # diabetic on insulin without complications: the first is now a "diabetic" with a normal
    # HbA1c, the second a "healthy" patient on insulin. Nothing else changes.
    healthy = is_label(f, "diagnosis", "healthy")
    diabetic = (
        is_label(f, "diagnosis", "type 2 diabetes")
        & is_label(f, "medication", "insulin")
        & is_label(f, "complication", "none")
    )
    pairs = max(1, n // 2)
    a, b = pick(rng, healthy, pairs), pick(rng, diabetic, pairs)
    set_values(f, "diagnosis", a, "type 2 diabetes")
    set_values(f, "diagnosis", b, "healthy")
    return np.unique(np.r_[record_ids(f, a), record_ids(f, b)])


def _egfr_off(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    egfr = f["egfr"].to_numpy()
    rows = pick(rng, egfr <= 190, n)
    # Raised, so no drug floor is newly crossed; still inside the 1-200 domain.
    set_values(f, "egfr", rows, egfr[rows] + rng.integers(1, 11, len(rows)))
    return record_ids(f, rows)


def _glucose_drift(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    glucose = f["glucose"].to_numpy()
    rows = pick(rng, glucose <= 360, n)
    # Sampled glucose sits within 13 mg/dL of ADAG; +30..40 puts it beyond the 15 mg/dL band.
    set_values(f, "glucose", rows, glucose[rows] + rng.integers(30, 41, len(rows)))
    return record_ids(f, rows)


def _medication_below_floor(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    indicated = is_label(f, "diagnosis", "type 2 diabetes") | is_label(
        f, "diagnosis", "chronic kidney disease"
    )
    rows = pick(rng, indicated & (f["egfr"].to_numpy() < EGFR_FLOOR["empagliflozin"]), n)
    set_values(f, "medication", rows, "empagliflozin")
    return record_ids(f, rows)


def _complication_without_parent(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    rows = pick(rng, is_label(f, "diagnosis", "healthy"), n)
    set_values(f, "complication", rows, "retinopathy")
    return record_ids(f, rows)


FAULTS: tuple[FaultMode, ...] = (
    FaultMode(
        "bp_swapped", "systolic and diastolic pressure swapped", ("bp_ordered",), _bp_swapped
    ),
    FaultMode(
        "encounter_before_birth",
        "date of birth after the encounter",
        ("dates_ordered", "age_matches_dates"),
        _encounter_before_birth,
    ),
    FaultMode(
        "diagnosis_swapped",
        "diagnoses of a healthy and a diabetic patient swapped",
        ("medication_allowed", "diabetes_hba1c"),
        _diagnosis_swapped,
    ),
    FaultMode(
        "egfr_off", "recorded eGFR disagrees with CKD-EPI 2021", ("egfr_ckd_epi",), _egfr_off
    ),
    FaultMode(
        "glucose_drift",
        "mean glucose drifted away from ADAG(HbA1c)",
        ("glucose_adag",),
        _glucose_drift,
    ),
    FaultMode(
        "medication_below_floor",
        "empagliflozin given below its eGFR floor of 20",
        ("medication_egfr_floor",),
        _medication_below_floor,
    ),
    FaultMode(
        "complication_without_parent",
        "retinopathy recorded for a healthy patient",
        ("complication_has_parent",),
        _complication_without_parent,
    ),
)
