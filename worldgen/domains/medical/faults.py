"""Medical fault modes: ``FAULTS`` and their helpers."""

from __future__ import annotations

import numpy as np

from worldgen.domains.medical.world import (
    CKD_EGFR,
    EGFR_FLOOR,
    HYPERTENSIVE_DBP,
    HYPERTENSIVE_SBP,
)
from worldgen.faults import FaultMode, Tables, is_label, pick, record_ids, set_values


def _bp_swapped(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    # Patients no blood-pressure band constrains, so the swap breaks the order alone.
    unbanded = ~is_label(f, "diagnosis", "healthy") & ~is_label(f, "diagnosis", "hypertension")
    rows = pick(rng, unbanded, n)
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
    # HbA1c, the second a "healthy" patient on insulin with a diabetic HbA1c. Nothing else
    # changes; the diabetic's eGFR and blood pressure are in the healthy bands, so those hold.
    healthy = is_label(f, "diagnosis", "healthy")
    diabetic = (
        is_label(f, "diagnosis", "type 2 diabetes")
        & is_label(f, "medication", "insulin")
        & is_label(f, "complication", "none")
        & (f["egfr"].to_numpy() >= CKD_EGFR)
        & (f["sbp"].to_numpy() < HYPERTENSIVE_SBP)
        & (f["dbp"].to_numpy() < HYPERTENSIVE_DBP)
    )
    pairs = max(1, n // 2)
    a, b = pick(rng, healthy, pairs), pick(rng, diabetic, pairs)
    set_values(f, "diagnosis", a, "type 2 diabetes")
    set_values(f, "diagnosis", b, "healthy")
    return np.unique(np.r_[record_ids(f, a), record_ids(f, b)])


def _egfr_off(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    egfr = f["egfr"].to_numpy()
    # Raised by at most 10, so no drug floor or the healthy band is newly crossed and a CKD
    # patient stays below 60; still inside the 1-200 domain.
    ckd_near = is_label(f, "diagnosis", "chronic kidney disease") & (egfr > CKD_EGFR - 11)
    rows = pick(rng, (egfr <= 190) & ~ckd_near, n)
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
        ("medication_allowed", "diabetes_hba1c", "normoglycaemic_hba1c"),
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
