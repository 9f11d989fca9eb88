"""An independent re-check of every domain invariant, written from the cited sources.

Nothing here imports worldgen's rules, invariants or the domain modules' helpers: the
relations (ADAG, CKD-EPI 2021, the statutes of limitation, accounting identities, ...) are
typed in again from their sources and computed in plain pandas, on the readable frame. The
domain package is used only to *get* data (``spec.sample``) and fault modes, so a bug has to be
made twice, the same way, to go unseen.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from worldgen.domains import get_domain
from worldgen.faults import COMMON_FAULTS
from worldgen.frames import to_frame

N = 100_000  # a multiple of 4: whole companies
Checks = dict[str, pd.Series]


def _in(frame: pd.DataFrame, col: str, allowed: dict[str, set[str]], key: str) -> pd.Series:
    pairs = set(zip(frame[key].astype(str), frame[col].astype(str), strict=True))
    ok = {p: p[1] in allowed.get(p[0], set()) for p in pairs}
    keys = pd.Series(list(zip(frame[key].astype(str), frame[col].astype(str), strict=True)))
    return keys.map(ok).astype(bool).set_axis(frame.index)


# --- medical -----------------------------------------------------------------------------


def medical_checks(f: pd.DataFrame) -> Checks:
    # Nathan et al. 2008 (ADAG): eAG mg/dL = 28.7 * A1C - 46.7; world band +/- 15.
    eag = 28.7 * f["hba1c"] - 46.7
    # Inker et al. 2021, race-free CKD-EPI creatinine:
    # 142 * min(Scr/k, 1)^a * max(Scr/k, 1)^-1.200 * 0.9938^age * 1.012 [female];
    # k = 0.7 (F) / 0.9 (M), a = -0.241 (F) / -0.302 (M).
    female = f["sex"].astype(str) == "female"
    k = np.where(female, 0.7, 0.9)
    a = np.where(female, -0.241, -0.302)
    r = f["creatinine"].to_numpy() / k
    egfr = 142 * np.minimum(r, 1) ** a * np.maximum(r, 1) ** -1.2 * 0.9938 ** f["age"].to_numpy()
    egfr = np.where(female, egfr * 1.012, egfr)
    age = (f["encounter_date"] - f["birth_date"]).dt.days // 365.25
    meds = {
        "healthy": {"none"},
        "prediabetes": {"none", "metformin"},
        "type 2 diabetes": {"none", "metformin", "insulin", "empagliflozin"},
        "hypertension": {"none", "lisinopril", "amlodipine"},
        "chronic kidney disease": {"none", "lisinopril", "empagliflozin", "amlodipine"},
    }
    comps = {
        "healthy": {"none"},
        "prediabetes": {"none"},
        "type 2 diabetes": {"none", "retinopathy", "neuropathy", "nephropathy"},
        "hypertension": {"none", "left ventricular hypertrophy"},
        "chronic kidney disease": {"none", "left ventricular hypertrophy"},
    }
    med = f["medication"].astype(str)
    # FDA 2016: metformin contraindicated below eGFR 30; KDIGO 2022: no SGLT2i start below 20.
    floor_ok = ~(
        ((med == "metformin") & (f["egfr"] < 30)) | ((med == "empagliflozin") & (f["egfr"] < 20))
    )
    diagnosis = f["diagnosis"].astype(str)
    t2d = diagnosis == "type 2 diabetes"
    healthy = diagnosis == "healthy"
    a1c = f["hba1c"]
    return {
        "bp_ordered": f["sbp"] > f["dbp"],
        "dates_ordered": f["encounter_date"] >= f["birth_date"],
        "age_matches_dates": age == f["age"],
        "glucose_adag": (f["glucose"] - eag).abs() <= 15,
        "egfr_ckd_epi": pd.Series(np.round(egfr) == f["egfr"].to_numpy(), index=f.index),
        "medication_allowed": _in(f, "medication", meds, "diagnosis"),
        "medication_egfr_floor": floor_ok,
        "complication_has_parent": _in(f, "complication", comps, "diagnosis"),
        "diabetes_hba1c": ~t2d | (a1c >= 6.5),  # ADA: diabetes at A1C >= 6.5%
        # ADA: prediabetes at A1C 5.7-6.4%, normal below 5.7% (values have one decimal)
        "prediabetes_hba1c": (diagnosis != "prediabetes") | a1c.between(5.7, 6.4),
        "normoglycaemic_hba1c": diagnosis.isin(("prediabetes", "type 2 diabetes")) | (a1c < 5.7),
        # KDIGO 2012: CKD at eGFR < 60 (no damage markers in the world)
        "healthy_egfr": ~healthy | (f["egfr"] >= 60),
        "ckd_egfr": (diagnosis != "chronic kidney disease") | (f["egfr"] < 60),
        # ESC/ESH 2018: office hypertension from 140/90 mmHg; the world's is systolic
        "healthy_bp": ~healthy | ((f["sbp"] < 140) & (f["dbp"] < 90)),
        "hypertension_sbp": (diagnosis != "hypertension") | (f["sbp"] >= 140),
    }


# --- legal -------------------------------------------------------------------------------

# Statutes of limitation, years: Cal. CCP 335.1, 337(a), 339(1), 340(c), 338(d); NY CPLR
# 214(5), 213(2), 213(2), 215(3), 213(8); Tex. CPRC 16.003(a), 16.004(a)(3), 16.051,
# 16.002(a), 16.004(a)(4).
LIMITATION = {
    ("California", "negligence"): 2,
    ("California", "breach of written contract"): 4,
    ("California", "breach of oral contract"): 2,
    ("California", "defamation"): 1,
    ("California", "fraud"): 3,
    ("New York", "negligence"): 3,
    ("New York", "breach of written contract"): 6,
    ("New York", "breach of oral contract"): 6,
    ("New York", "defamation"): 1,
    ("New York", "fraud"): 6,
    ("Texas", "negligence"): 2,
    ("Texas", "breach of written contract"): 4,
    ("Texas", "breach of oral contract"): 4,
    ("Texas", "defamation"): 1,
    ("Texas", "fraud"): 4,
}
# The world's (illustrative) elements, defences, bounds and caps, in dollars.
ELEMENTS = {
    "negligence": ("duty", "breach", "causation", "damages"),
    "breach of written contract": ("duty", "breach", "damages"),
    "breach of oral contract": ("duty", "breach", "damages"),
    "defamation": ("breach", "causation", "damages"),
    "fraud": ("duty", "breach", "causation", "damages"),
}
DEFENCES = {
    "negligence": {"none", "assumption of risk", "release"},
    "breach of written contract": {"none", "release", "impossibility"},
    "breach of oral contract": {"none", "release", "impossibility", "statute of frauds"},
    "defamation": {"none", "truth", "privilege"},
    "fraud": {"none", "release"},
}
CLAIM_DOLLARS = {  # (lowest claim, highest claim, award cap)
    "negligence": (10_000, 5_000_000, 2_500_000),
    "breach of written contract": (5_000, 10_000_000, 6_000_000),
    "breach of oral contract": (1_000, 500_000, 250_000),
    "defamation": (10_000, 2_000_000, 1_000_000),
    "fraud": (5_000, 5_000_000, 3_000_000),
}


def legal_checks(f: pd.DataFrame) -> Checks:
    claim = f["claim_type"].astype(str)
    key = pd.Series(list(zip(f["jurisdiction"].astype(str), claim, strict=True)), index=f.index)
    years = f["limitation_years"]
    deadline = pd.Series(pd.NaT, index=f.index, dtype=f["incident_date"].dtype)
    for n in np.unique(years):  # the anniversary; pandas clamps 29 Feb to 28 Feb
        rows = years == n
        deadline[rows] = f.loc[rows, "incident_date"] + pd.DateOffset(years=int(n))
    met = pd.Series(True, index=f.index)
    for name, needed in ELEMENTS.items():
        rows = claim == name
        for element in needed:
            met &= ~rows | f[f"element_{element}"]
    liable = f["elements_met"] & ~f["time_barred"] & ~f["defence_valid"]
    low = claim.map({c: v[0] * 100 for c, v in CLAIM_DOLLARS.items()})
    high = claim.map({c: v[1] * 100 for c, v in CLAIM_DOLLARS.items()})
    cap = claim.map({c: v[2] * 100 for c, v in CLAIM_DOLLARS.items()})
    ruling = f["ruling"].astype(str)
    return {
        "filed_after_incident": f["filing_date"] >= f["incident_date"],
        "limitation_matches_statute": key.map(LIMITATION) == years,
        "time_bar_exact": (f["filing_date"] > deadline) == f["time_barred"],
        "elements_met_exact": met == f["elements_met"],
        "defence_allowed": _in(f, "defence", DEFENCES, "claim_type"),
        "defence_valid_needs_defence": ~((f["defence"].astype(str) == "none") & f["defence_valid"]),
        "ruling_exact": ruling == np.where(liable, "liable", "not liable"),
        "award_within_claim": f["awarded_cents"] <= f["claimed_cents"],
        "award_only_if_liable": (ruling == "liable") | (f["awarded_cents"] == 0),
        # every claim requires damages, so a liable judgment awards some
        "award_if_liable": (ruling == "not liable") | (f["awarded_cents"] > 0),
        # the world is observed on 2025-12-31: every case has its judgment, filed by then
        "judged_by_as_of": f["ruling"].isna() | (f["filing_date"] <= pd.Timestamp("2025-12-31")),
        "claim_within_bounds": (f["claimed_cents"] >= low) & (f["claimed_cents"] <= high),
        "award_within_cap": f["awarded_cents"] <= cap,
    }


# --- financial ---------------------------------------------------------------------------

RATE_BP = {"term loan": 700, "revolving credit": 800, "senior notes": 600}  # world's, illustr.
MIN_COVERAGE = {"term loan": (3, 1), "revolving credit": (5, 2), "senior notes": (2, 1)}


def financial_checks(f: pd.DataFrame) -> Checks:
    c = {name: f[name].astype(np.int64) for name in f.columns if name.endswith("_cents")}
    loan = f["loan_type"].astype(str)
    # Interest = liabilities * bp / 10000 / 4, half up: floor((2 * L * bp + 40000) / 80000).
    interest = (2 * c["liabilities_cents"] * loan.map(RATE_BP) + 40_000) // 80_000
    # 26 U.S.C. 11(b): 21% of taxable income; the world charges it per quarter, floored.
    pretax = (c["operating_income_cents"] - c["interest_cents"]).clip(lower=0)
    tax = pretax * 21 // 100
    num, den = loan.map(lambda t: MIN_COVERAGE[t][0]), loan.map(lambda t: MIN_COVERAGE[t][1])
    breached = c["operating_income_cents"] * den < num * c["interest_cents"]
    ordered = f.sort_values(["company_id", "period"], kind="stable")
    prev_close = ordered.groupby("company_id")["equity_close_cents"].shift(1)
    prev_period = ordered.groupby("company_id")["period"].shift(1)
    follows = prev_period == ordered["period"] - 1
    carried = (~follows | (ordered["equity_open_cents"] == prev_close)).reindex(f.index)
    return {
        "gross_profit_identity": c["revenue_cents"] - c["cogs_cents"] == c["gross_profit_cents"],
        "operating_income_identity": c["gross_profit_cents"] - c["opex_cents"]
        == c["operating_income_cents"],
        "net_income_identity": c["operating_income_cents"] - c["interest_cents"] - c["tax_cents"]
        == c["net_income_cents"],
        "balance_sheet_identity": c["liabilities_cents"] + c["equity_close_cents"]
        == c["assets_cents"],
        "equity_roll_forward": c["equity_open_cents"] + c["net_income_cents"] - c["dividends_cents"]
        == c["equity_close_cents"],
        "equity_carried_forward": carried,
        "tax_at_statutory_rate": tax == c["tax_cents"],
        "interest_at_contract_rate": interest == c["interest_cents"],
        "covenant_exact": breached == f["covenant_breached"],
        "period_unique": ~f.duplicated(["company_id", "period"], keep=False),
    }


CHECKS: dict[str, Callable[[pd.DataFrame], Checks]] = {
    "medical": medical_checks,
    "legal": legal_checks,
    "financial": financial_checks,
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_clean_records_pass_the_independent_checks(name: str) -> None:
    spec = get_domain(name).spec
    frame = to_frame(spec, spec.sample(N, np.random.default_rng(99), offset=0))
    checks = CHECKS[name](frame)
    assert set(checks) == {inv.name for inv in spec.invariants}, "re-check every invariant"
    failing = {k: int((~v.astype(bool)).sum()) for k, v in checks.items() if not v.all()}
    assert failing == {}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_independent_checks_find_every_fault(name: str) -> None:
    domain = get_domain(name)
    spec = domain.spec
    frame = to_frame(spec, spec.sample(20_000, np.random.default_rng(5), offset=0))
    common = {f.name for f in COMMON_FAULTS}
    for fault_name, fault in domain.faults.items():
        if fault_name in common:
            continue
        tables = {"records": frame.copy()}
        ids = fault.apply(tables, np.random.default_rng(8), 20)
        checks = CHECKS[name](tables["records"])
        broken = {k for k, v in checks.items() if not v.all()}
        assert broken == set(fault.breaks), fault_name
        bad = np.zeros(len(frame), dtype=bool)
        for k in broken:
            bad |= ~checks[k].to_numpy(dtype=bool)
        found = np.unique(tables["records"]["record_id"].to_numpy()[bad])
        assert np.array_equal(found, ids), fault_name
