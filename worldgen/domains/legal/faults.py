"""Legal fault modes: ``FAULTS`` and their helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from worldgen.domains.legal.world import AWARD_CAP, INCIDENT_FIRST
from worldgen.faults import FaultMode, Tables, is_label, pick, record_ids, set_values


def _days(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy().astype("datetime64[D]").astype(np.int64)


def _ruling_flipped(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    # Awarded 0 stays: a liable judgment that awards nothing breaks award_if_liable too.
    rows = pick(rng, is_label(f, "ruling", "not liable"), n)
    set_values(f, "ruling", rows, "liable")
    return record_ids(f, rows)


def _filed_before_incident(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    incident = _days(f, "incident_date")
    # Not time-barred: a negative delay is never past the deadline, so the bar stays right.
    ok = ~f["time_barred"].to_numpy() & (incident > INCIDENT_FIRST + 30)
    rows = pick(rng, ok, n)
    filed = incident[rows] - rng.integers(1, 31, len(rows))
    set_values(f, "filing_date", rows, filed.astype("datetime64[D]").astype("datetime64[s]"))
    return record_ids(f, rows)


def _award_exceeds_claim(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    claimed = f["claimed_cents"].to_numpy()
    cap = np.asarray([AWARD_CAP[c] for c in f["claim_type"].astype(str)])
    rows = pick(rng, is_label(f, "ruling", "liable") & (claimed + 100_000 <= cap), n)
    set_values(f, "awarded_cents", rows, claimed[rows] + rng.integers(1, 100_001, len(rows)))
    return record_ids(f, rows)


def _award_over_cap(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    claimed = f["claimed_cents"].to_numpy()
    cap = np.asarray([AWARD_CAP[c] for c in f["claim_type"].astype(str)])
    rows = pick(rng, is_label(f, "ruling", "liable") & (claimed > cap + 100), n)
    over = cap[rows] + 1 + rng.integers(0, claimed[rows] - cap[rows])
    set_values(f, "awarded_cents", rows, over)
    return record_ids(f, rows)


def _award_without_liability(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    claimed = f["claimed_cents"].to_numpy()
    cap = np.asarray([AWARD_CAP[c] for c in f["claim_type"].astype(str)])
    rows = pick(rng, is_label(f, "ruling", "not liable"), n)
    top = np.minimum(claimed[rows], cap[rows])
    set_values(f, "awarded_cents", rows, 1 + rng.integers(0, top))
    return record_ids(f, rows)


def _time_bar_wrong(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    # Rows lost on the elements or a defence: the ruling does not hinge on the bar.
    settled = ~f["elements_met"].to_numpy() | f["defence_valid"].to_numpy()
    rows = pick(rng, settled, n)
    set_values(f, "time_barred", rows, ~f["time_barred"].to_numpy()[rows])
    return record_ids(f, rows)


def _limitation_misrecorded(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    # Filed in time under N years is in time under N + 1 too, so the bar stays right.
    rows = pick(rng, ~f["time_barred"].to_numpy(), n)
    set_values(f, "limitation_years", rows, f["limitation_years"].to_numpy()[rows] + 1)
    return record_ids(f, rows)


def _defence_not_allowed(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    ok = ~is_label(f, "defence", "none") & ~is_label(f, "claim_type", "defamation")
    rows = pick(rng, ok, n)
    set_values(f, "defence", rows, "truth")  # truth answers defamation only
    return record_ids(f, rows)


def _elements_flag_wrong(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    settled = f["time_barred"].to_numpy() | f["defence_valid"].to_numpy()
    rows = pick(rng, settled, n)
    set_values(f, "elements_met", rows, ~f["elements_met"].to_numpy()[rows])
    return record_ids(f, rows)


FAULTS: tuple[FaultMode, ...] = (
    FaultMode(
        "ruling_flipped",
        "judgment says liable though the findings say not liable",
        ("ruling_exact", "award_if_liable"),
        _ruling_flipped,
    ),
    FaultMode(
        "filed_before_incident",
        "filing date typed before the incident date",
        ("filed_after_incident",),
        _filed_before_incident,
    ),
    FaultMode(
        "award_exceeds_claim",
        "more awarded than the plaintiff claimed",
        ("award_within_claim",),
        _award_exceeds_claim,
    ),
    FaultMode(
        "award_over_cap", "award above the claim's cap", ("award_within_cap",), _award_over_cap
    ),
    FaultMode(
        "award_without_liability",
        "damages awarded on a not-liable judgment",
        ("award_only_if_liable",),
        _award_without_liability,
    ),
    FaultMode(
        "time_bar_wrong",
        "time-barred flag disagrees with the dates and statute",
        ("time_bar_exact",),
        _time_bar_wrong,
    ),
    FaultMode(
        "limitation_misrecorded",
        "limitation period one year longer than the statute's",
        ("limitation_matches_statute",),
        _limitation_misrecorded,
    ),
    FaultMode(
        "defence_not_allowed",
        "a defence the claim does not admit (truth off defamation)",
        ("defence_allowed",),
        _defence_not_allowed,
    ),
    FaultMode(
        "elements_flag_wrong",
        "elements-met flag disagrees with the element findings",
        ("elements_met_exact",),
        _elements_flag_wrong,
    ),
)
