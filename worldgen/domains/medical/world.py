"""Medical world: tables, structural equations and ``build()``."""

from __future__ import annotations

import numpy as np

from worldgen.calc import GFR_BOUNDS, GFR_STAGES
from worldgen.rules import AllowedPairs, Condition, ConditionalRange, Greater, Invariant, Recomputed
from worldgen.spec import Columns, VarDomain, Variable, WorldSpec, choice_by_row

SEXES = ("female", "male")
DIAGNOSES = ("healthy", "prediabetes", "type 2 diabetes", "hypertension", "chronic kidney disease")
MEDICATIONS = ("none", "metformin", "insulin", "empagliflozin", "lisinopril", "amlodipine")
COMPLICATIONS = ("none", "retinopathy", "neuropathy", "nephropathy", "left ventricular hypertrophy")
FEMALE, MALE = 0, 1
HEALTHY, PREDIABETES, T2D, HYPERTENSION, CKD = range(5)
NONE, METFORMIN, INSULIN, EMPAGLIFLOZIN, LISINOPRIL, AMLODIPINE = range(6)

ADAG_TOLERANCE = 15  # mg/dL, illustrative band around the ADAG regression line
# ADA Standards of Care: HbA1c < 5.7% normal, 5.7-6.4% prediabetes, >= 6.5% diabetes. Values
# are recorded to one decimal, so "below 5.7" is "at most 5.6". Every diagnosis but the two
# glycaemic ones is normoglycaemic here (one primary diagnosis, no comorbidity recorded).
NORMAL_A1C_MAX, PREDIABETES_A1C, DIABETES_A1C = 5.6, (5.7, 6.4), 6.5
NORMOGLYCAEMIC = ("healthy", "hypertension", "chronic kidney disease")
# KDIGO 2012: CKD is eGFR < 60 (G3a-G5) or markers of kidney damage; the world records no
# damage markers, so its CKD is the eGFR criterion and a healthy patient has eGFR >= 60.
CKD_EGFR = 60
# ESC/ESH 2018 (and ACC/AHA 2017 stage 2): office hypertension from 140/90 mmHg. A healthy
# patient is below both; the world's hypertension is systolic (SBP >= 140 at the encounter
# that records it, whatever is then prescribed).
HYPERTENSIVE_SBP, HYPERTENSIVE_DBP = 140, 90
# Each diagnosis' band on every column a cited threshold reads, checked both ways: a value
# relabelled into a diagnosis (or out of it) outside that diagnosis' band breaks one of these.
# (invariant, column, diagnosis, low, high)
BANDS: tuple[tuple[str, str, str, float | None, float | None], ...] = (
    ("diabetes_hba1c", "hba1c", "type 2 diabetes", DIABETES_A1C, None),
    ("prediabetes_hba1c", "hba1c", "prediabetes", *PREDIABETES_A1C),
    *(("normoglycaemic_hba1c", "hba1c", d, None, NORMAL_A1C_MAX) for d in NORMOGLYCAEMIC),
    ("healthy_egfr", "egfr", "healthy", CKD_EGFR, None),
    ("ckd_egfr", "egfr", "chronic kidney disease", None, CKD_EGFR - 1),
    ("healthy_bp", "sbp", "healthy", None, HYPERTENSIVE_SBP - 1),
    ("healthy_bp", "dbp", "healthy", None, HYPERTENSIVE_DBP - 1),
    ("hypertension_sbp", "sbp", "hypertension", HYPERTENSIVE_SBP, None),
)
BAND_TEXT = {
    "diabetes_hba1c": "type 2 diabetes has HbA1c >= 6.5%",
    "prediabetes_hba1c": "prediabetes has HbA1c 5.7-6.4%",
    "normoglycaemic_hba1c": "healthy, hypertension and chronic kidney disease have HbA1c < 5.7%",
    "healthy_egfr": "a healthy patient has eGFR >= 60 mL/min/1.73m2",
    "ckd_egfr": "chronic kidney disease has eGFR < 60 mL/min/1.73m2",
    "healthy_bp": "a healthy patient has blood pressure < 140/90 mmHg",
    "hypertension_sbp": "hypertension has systolic pressure >= 140 mmHg",
}
EGFR_FLOOR = {"metformin": 30, "empagliflozin": 20}  # FDA 2016; KDIGO 2022
# SBP rise of hypertension over the age and BMI trend: most of its readings reach 140 unaided
HYPERTENSION_RISE = 30
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


def creatinine_at(egfr: float, age: np.ndarray, female: np.ndarray) -> np.ndarray:
    """Creatinine (mg/dL) at which CKD-EPI 2021 gives ``egfr`` (unrounded), on the branch above
    kappa: at 18-90 years an eGFR of 60 or less is reached only there (it is >= 81 at kappa)."""
    kappa = np.where(female, 0.7, 0.9)
    top = 142.0 * 0.9938**age * np.where(female, 1.012, 1.0)
    return np.asarray(kappa * (top / egfr) ** (1 / 1.2))


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
    glycaemic = [p["diagnosis"] == PREDIABETES, p["diagnosis"] == T2D]
    mean = np.select(glycaemic, [6.0, 8.2], default=5.3)
    sd = np.where(p["diagnosis"] == T2D, 1.3, 0.3)
    # Clipped to the diagnosis' band (the *_hba1c invariants check the same bands).
    low = np.select(glycaemic, [PREDIABETES_A1C[0], DIABETES_A1C], default=4.0)
    high = np.select(glycaemic, [PREDIABETES_A1C[1], 14.0], default=NORMAL_A1C_MAX)
    return np.round(np.clip(rng.normal(mean, sd), low, high), 1)


def _glucose(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    noise = rng.integers(-ADAG_TOLERANCE + 3, ADAG_TOLERANCE - 2, n)
    return (np.rint(adag_glucose(p["hba1c"])) + noise).astype(np.int64)


def _creatinine(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    base = np.where(p["sex"] == MALE, 0.95, 0.75) + 0.004 * (p["age"] - 18)
    kidney = np.select(
        [p["diagnosis"] == CKD, p["diagnosis"] == T2D], [rng.lognormal(0.6, 0.45, n), 0.15], 0.0
    )
    level = base + kidney + rng.normal(0.0, 0.12, n)
    # eGFR derives from creatinine, so the KDIGO bands are kept here: a healthy patient's value
    # is reflected below the one giving eGFR 60, a CKD patient's above the one giving 59.
    # Both limits sit on the 0.01 mg/dL grid on their safe side, so rounding cannot cross them.
    female = p["sex"] == FEMALE
    cap = np.floor(100 * creatinine_at(CKD_EGFR, p["age"], female)) / 100
    floor = np.ceil(100 * creatinine_at(CKD_EGFR - 1, p["age"], female)) / 100
    level = np.where((p["diagnosis"] == HEALTHY) & (level > cap), 2 * cap - level, level)
    level = np.where((p["diagnosis"] == CKD) & (level < floor), 2 * floor - level, level)
    return np.round(np.clip(level, 0.4, 12.0), 2)


def _egfr(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return ckd_epi_2021(p["creatinine"], p["age"], p["sex"] == FEMALE)


def _reflect(x: np.ndarray, rows: np.ndarray, limit: int, above: bool) -> np.ndarray:
    """Integer readings of ``rows`` on the wrong side of ``limit`` mirrored onto the right one
    (``above``: at least ``limit``; else below it), so no value piles up at the limit."""
    wrong = rows & ((x < limit) if above else (x >= limit))
    return np.where(wrong, 2 * limit - 1 - x, x)


def _sbp(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    diag = p["diagnosis"]
    rise = np.select([diag == HYPERTENSION, diag == CKD], [HYPERTENSION_RISE, 22], 0)
    sbp = np.rint(108 + 0.35 * (p["age"] - 18) + 0.6 * (p["bmi"] - 24) + rise + rng.normal(0, 9, n))
    sbp = _reflect(sbp, diag == HEALTHY, HYPERTENSIVE_SBP, above=False)
    sbp = _reflect(sbp, diag == HYPERTENSION, HYPERTENSIVE_SBP, above=True)
    return np.clip(sbp, 90, 220).astype(np.int64)  # the bands lie inside 90-220


def _dbp(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    dbp = 0.55 * p["sbp"] + rng.normal(8, 6, n)
    # Pulse pressure of at least 20 mmHg keeps SBP > DBP by construction; a healthy DBP of 90+
    # (at most SBP - 20) mirrors to 60-89, still at most SBP - 20.
    dbp = np.rint(np.clip(dbp, 50, p["sbp"] - 20))
    dbp = _reflect(dbp, p["diagnosis"] == HEALTHY, HYPERTENSIVE_DBP, above=False)
    return dbp.astype(np.int64)


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


def _band(column: str, diagnosis: str, low: float | None, high: float | None) -> ConditionalRange:
    return ConditionalRange(column, Condition("diagnosis", diagnosis), low=low, high=high)


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
            "dbp",
            ("sbp", "diagnosis"),
            _dbp,
            num("int64", 30, 250, unit="mmHg"),
            "diastolic blood pressure",
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
        *(
            Invariant(name, text, tuple(_band(*band[1:]) for band in BANDS if band[0] == name))
            for name, text in BAND_TEXT.items()
        ),
    ]
    # 2: HbA1c, eGFR and blood-pressure bands per diagnosis, checked both ways
    return WorldSpec("medical", "2", variables, invariants)
