"""Labels checked both ways: each label against every band its domain cites (issue 28, item 7).

A record relabelled into a diagnosis whose band its values are outside (a diabetic HbA1c called
`healthy` or `prediabetes`, a CKD eGFR called `healthy`, ...) fails the gate naming the band,
and only that band among the record-level checks; a judgment on a case filed after the world's
as-of date fails too. Clean data has no such record, by a re-derivation typed in here from the
sources (ADA, KDIGO, ESC/ESH), not from the spec's own invariants.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

import numpy as np
import pandas as pd
import pytest

from validation import validate
from worldgen.dataset import generate, load_table, write_variant
from worldgen.faults import set_values

TABLES = ("records", "documents", "qa")
N_SMALL = 4000
N_CLEAN = 20_000
PICK = 3  # records edited per case
AS_OF = pd.Timestamp("2025-12-31")  # the legal world is observed on this day
Frame: TypeAlias = pd.DataFrame


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bands")
    return {d: generate([d], N_SMALL, 21, str(root / d)).uri for d in ("medical", "legal")}


def _edited(
    uri: str, domain: str, out: Path, edit: Callable[[Frame], np.ndarray]
) -> tuple[dict[str, set[int]], list[int]]:
    """Edit the records table only (documents and QA keep what they said); the record-level
    checks that fail, with their record ids, and the ids edited."""
    tables = {t: load_table(uri, domain, t) for t in TABLES}
    records = tables["records"]
    rows = edit(records)
    assert len(rows) == PICK, f"only {len(rows)} records fit this case"
    ids = sorted(records["record_id"].iloc[rows].tolist())
    report = validate(write_variant(uri, domain, tables, str(out), {"bands": 1}).uri, docs=False)
    assert not report.success
    return {r.check: set(r.record_ids) for r in report.failures if r.batch == "records"}, ids


def _first(mask: pd.Series) -> np.ndarray:
    return np.flatnonzero(mask.to_numpy())[:PICK]


def _is(f: Frame, name: str, label: str) -> pd.Series:
    return f[name].astype(str) == label


def _healthy_ranges(f: Frame) -> pd.Series:
    """eGFR and blood pressure a healthy patient may have: relabelled `healthy`, such a record
    can break only the HbA1c band."""
    return (f["egfr"] >= 60) & (f["sbp"] < 140) & (f["dbp"] < 90)


# (recorded diagnosis, relabelled as, the band that must fail, what else the rows satisfy)
RELABEL = [
    ("type 2 diabetes", "healthy", "normoglycaemic_hba1c", _healthy_ranges),
    ("type 2 diabetes", "prediabetes", "prediabetes_hba1c", None),
    ("prediabetes", "healthy", "normoglycaemic_hba1c", _healthy_ranges),
    ("healthy", "prediabetes", "prediabetes_hba1c", None),
    ("healthy", "type 2 diabetes", "diabetes_hba1c", None),
    (
        "chronic kidney disease",
        "healthy",
        "healthy_egfr",
        lambda f: (f["sbp"] < 140) & (f["dbp"] < 90),
    ),
    ("hypertension", "healthy", "healthy_bp", lambda f: f["egfr"] >= 60),
    ("healthy", "chronic kidney disease", "ckd_egfr", None),
    ("healthy", "hypertension", "hypertension_sbp", None),
]


@pytest.mark.parametrize(
    ("source", "target", "check", "fits"), RELABEL, ids=[f"{s}->{t}" for s, t, _, _ in RELABEL]
)
def test_a_label_outside_its_band_fails_naming_the_band(
    small: dict[str, str],
    tmp_path: Path,
    source: str,
    target: str,
    check: str,
    fits: Callable[[Frame], pd.Series] | None,
) -> None:
    def relabel(f: Frame) -> np.ndarray:
        # no drug and no complication: allowed with every diagnosis, so only a band can object
        ok = _is(f, "diagnosis", source) & _is(f, "medication", "none")
        ok &= _is(f, "complication", "none")
        if fits is not None:
            ok &= fits(f)
        rows = _first(ok)
        set_values(f, "diagnosis", rows, target)
        return rows

    failing, ids = _edited(small["medical"], "medical", tmp_path / "relabel", relabel)
    assert failing == {check: set(ids)}


def test_a_healthy_diastolic_pressure_of_90_fails(small: dict[str, str], tmp_path: Path) -> None:
    def raise_dbp(f: Frame) -> np.ndarray:
        rows = _first(_is(f, "diagnosis", "healthy") & (f["sbp"] > 95))
        set_values(f, "dbp", rows, 90 + np.arange(len(rows)))  # still below the systolic
        return rows

    failing, ids = _edited(small["medical"], "medical", tmp_path / "dbp", raise_dbp)
    assert failing == {"healthy_bp": set(ids)}


def test_a_judgment_on_a_case_filed_after_the_as_of_date_fails(
    small: dict[str, str], tmp_path: Path
) -> None:
    def file_later(f: Frame) -> np.ndarray:
        # time-barred cases filed later still are: the bar and the ruling stay right
        rows = _first(f["time_barred"])
        days = pd.to_timedelta([1, 400, 2000], unit="D")  # 2026-01-01 .. 2031-06-23
        set_values(f, "filing_date", rows, (AS_OF + days).astype(f["filing_date"].dtype))
        return rows

    failing, ids = _edited(small["legal"], "legal", tmp_path / "late", file_later)
    # the filing date's declared range ends on the as-of date too
    assert failing == {"judged_by_as_of": set(ids), "domain:filing_date": set(ids)}


def test_a_liable_judgment_awarding_nothing_fails(small: dict[str, str], tmp_path: Path) -> None:
    def award_nothing(f: Frame) -> np.ndarray:
        rows = _first(_is(f, "ruling", "liable"))
        set_values(f, "awarded_cents", rows, 0)
        return rows

    failing, ids = _edited(small["legal"], "legal", tmp_path / "nothing", award_nothing)
    assert failing == {"award_if_liable": set(ids)}


# --- clean data: no record a clinician or a court would call inconsistent ------------------


def medical_inconsistent(f: Frame) -> dict[str, int]:
    d, a1c = f["diagnosis"].astype(str), f["hba1c"]
    band = {  # ADA Standards of Care: < 5.7 normal, 5.7-6.4 prediabetes, >= 6.5 diabetes
        "healthy": a1c < 5.7,
        "prediabetes": (a1c >= 5.7) & (a1c < 6.5),
        "type 2 diabetes": a1c >= 6.5,
        "hypertension": a1c < 5.7,
        "chronic kidney disease": a1c < 5.7,
    }
    high_bp = (f["sbp"] >= 140) | (f["dbp"] >= 90)  # ESC/ESH 2018 office hypertension
    return {
        **{
            f"{label} HbA1c out of band": int(((d == label) & ~ok).sum())
            for label, ok in band.items()
        },
        "healthy with eGFR < 60 (KDIGO CKD)": int(((d == "healthy") & (f["egfr"] < 60)).sum()),
        "healthy with BP >= 140/90": int(((d == "healthy") & high_bp).sum()),
        "CKD with eGFR >= 60": int(((d == "chronic kidney disease") & (f["egfr"] >= 60)).sum()),
        "hypertension with SBP < 140": int(((d == "hypertension") & (f["sbp"] < 140)).sum()),
    }


def legal_inconsistent(f: Frame) -> dict[str, int]:
    liable = f["ruling"].astype(str) == "liable"
    return {
        "judged but filed after the as-of date": int((f["filing_date"] > AS_OF).sum()),
        "liable with no award": int((liable & (f["awarded_cents"] <= 0)).sum()),
        "not liable with an award": int((~liable & (f["awarded_cents"] > 0)).sum()),
    }


def financial_inconsistent(f: Frame) -> dict[str, int]:
    # coverage = EBIT / interest against the loan's minimum (world's: 3.0, 2.5, 2.0), both ways
    minimum = (
        f["loan_type"]
        .astype(str)
        .map({"term loan": 3.0, "revolving credit": 2.5, "senior notes": 2.0})
    )
    ebit, interest = f["operating_income_cents"], f["interest_cents"]
    below = ebit * 10 < (minimum * 10).round().astype(np.int64) * interest
    return {
        "breached flag on a met covenant": int((f["covenant_breached"] & ~below).sum()),
        "unflagged breach": int((~f["covenant_breached"] & below).sum()),
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("domain", "count"),
    [
        ("medical", medical_inconsistent),
        ("legal", legal_inconsistent),
        ("financial", financial_inconsistent),
    ],
)
def test_clean_data_has_no_inconsistent_record(
    domain: str, count: Callable[[Frame], dict[str, int]], tmp_path: Path
) -> None:
    ref = generate([domain], N_CLEAN, 3, str(tmp_path / domain), shards=2)
    records = load_table(ref.uri, domain, "records")
    assert len(records) == N_CLEAN
    found = count(records)
    assert found and all(v == 0 for v in found.values()), found
