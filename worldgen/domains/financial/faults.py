"""Financial fault modes: ``FAULTS`` and their helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from worldgen.domains.financial.text import ASSETS, CLOSE, NI, OPEN, OPEX, TAX
from worldgen.domains.financial.world import PERIODS
from worldgen.faults import FaultMode, Tables, pick, record_ids, set_values


def _values(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy()


def _off_by_one_cent(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    rows = pick(rng, np.ones(len(f), dtype=bool), n)
    set_values(f, OPEX, rows, _values(f, OPEX)[rows] + 1)  # opex enters one identity only
    return record_ids(f, rows)


def _balance_sheet_unbalanced(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    rows = pick(rng, np.ones(len(f), dtype=bool), n)
    set_values(f, ASSETS, rows, _values(f, ASSETS)[rows] + rng.integers(1, 1_000_000, len(rows)))
    return record_ids(f, rows)


def _roll_forward_broken(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    rows = pick(rng, _values(f, "period") > 0, n)
    set_values(f, OPEN, rows, _values(f, OPEN)[rows] + rng.integers(1, 1_000_000, len(rows)))
    return record_ids(f, rows)


def _covenant_flag_wrong(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    rows = pick(rng, np.ones(len(f), dtype=bool), n)
    set_values(f, "covenant_breached", rows, ~_values(f, "covenant_breached")[rows])
    return record_ids(f, rows)


def _duplicate_period(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    period, company = _values(f, "period"), _values(f, "company_id")
    # A second quarter relabelled as the first: it and the real Q1 now share a key. Nothing is
    # labelled Q2 any more, so no roll-forward pair is formed or lost, whether a checker pairs
    # neighbours after a stable sort or joins on period + 1.
    after_q1 = np.r_[False, (period[:-1] == 0) & (company[:-1] == company[1:])]
    rows = pick(rng, (period == 1) & after_q1, n)
    set_values(f, "period", rows, 0)
    return np.unique(np.r_[record_ids(f, rows), record_ids(f, rows - 1)])


def _tax_rate_wrong(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    # Last quarter only (its close opens nothing); net income, equity and assets follow the
    # wrong tax, so every identity still holds and only the rate check can catch it.
    rows = pick(rng, _values(f, "period") == PERIODS - 1, n)
    extra = rng.integers(100, 1_000_000, len(rows))
    for name, sign in ((TAX, 1), (NI, -1), (CLOSE, -1), (ASSETS, -1)):
        set_values(f, name, rows, _values(f, name)[rows] + sign * extra)
    return record_ids(f, rows)


FAULTS: tuple[FaultMode, ...] = (
    FaultMode(
        "line_item_off_by_one_cent",
        "operating expenses one cent off the income statement",
        ("operating_income_identity",),
        _off_by_one_cent,
    ),
    FaultMode(
        "balance_sheet_unbalanced",
        "assets differ from liabilities plus equity",
        ("balance_sheet_identity",),
        _balance_sheet_unbalanced,
    ),
    FaultMode(
        "roll_forward_broken",
        "opening equity typed wrong: matches neither the prior "
        "close nor this quarter's roll-forward",
        ("equity_roll_forward", "equity_carried_forward"),
        _roll_forward_broken,
    ),
    FaultMode(
        "covenant_flag_wrong",
        "covenant flag disagrees with EBIT / interest",
        ("covenant_exact",),
        _covenant_flag_wrong,
    ),
    FaultMode(
        "duplicate_period",
        "a company's Q2 filed again as Q1",
        ("period_unique",),
        _duplicate_period,
    ),
    FaultMode(
        "tax_rate_wrong",
        "tax charged off the statutory rate, consistently carried "
        "through net income, equity and assets",
        ("tax_at_statutory_rate",),
        _tax_rate_wrong,
    ),
)
