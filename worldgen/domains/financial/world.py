"""Financial world: tables, structural equations, invariant recomputations and ``build()``."""

from __future__ import annotations

import numpy as np

from worldgen.rules import CarriedForward, Invariant, Recomputed, SignedSum, Unique
from worldgen.spec import Columns, IdScheme, VarDomain, Variable, WorldSpec, choice_given

SECTORS = ("retail", "manufacturing", "software", "utilities")
LOAN_TYPES = ("term loan", "revolving credit", "senior notes")
PERIODS = 4  # quarters per company

TAX_RATE_PCT = 21  # 26 U.S.C. §11(b)
RATE_BP = {"term loan": 700, "revolving credit": 800, "senior notes": 600}  # illustrative
MIN_COVERAGE_TENTHS = {"term loan": 30, "revolving credit": 25, "senior notes": 20}  # illustr.
RATE = np.array([RATE_BP[t] for t in LOAN_TYPES], dtype=np.int64)
MIN_COVERAGE = np.array([MIN_COVERAGE_TENTHS[t] for t in LOAN_TYPES], dtype=np.int64)

# Per sector (illustrative): median quarterly revenue (cents), COGS and opex shares of revenue,
# leverage (liabilities / annual revenue) and the loan-type mix.
REVENUE_MEDIAN = np.array([40e8, 25e8, 8e8, 30e8])
COGS_SHARE = np.array([0.70, 0.62, 0.25, 0.55])
OPEX_SHARE = np.array([0.20, 0.24, 0.58, 0.22])
LEVERAGE = np.array([0.35, 0.5, 0.3, 1.0])
SECTOR_MIX = np.array([[0.3, 0.3, 0.25, 0.15]])
LOAN_MIX = np.array(
    [
        [0.3, 0.6, 0.1],
        [0.5, 0.3, 0.2],
        [0.3, 0.5, 0.2],
        [0.3, 0.1, 0.6],
    ]
)


def _groups(company: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's company index within the block (rows of a company are consecutive), and the
    first row of every company."""
    g = np.asarray(company, dtype=np.int64) - (company[0] if len(company) else 0)
    first = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else g
    return g, first


def interest_due(liabilities: np.ndarray, loan_type: np.ndarray) -> np.ndarray:
    """Liabilities * annual rate / 4, rounded half up to the cent (integer arithmetic)."""
    return (liabilities * RATE[loan_type] + 20_000) // 40_000


def income_tax(operating_income: np.ndarray, interest: np.ndarray) -> np.ndarray:
    return (np.maximum(operating_income - interest, 0) * TAX_RATE_PCT) // 100


def covenant_breached(
    operating_income: np.ndarray, interest: np.ndarray, loan_type: np.ndarray
) -> np.ndarray:
    """EBIT / interest below the loan's minimum coverage, compared exactly in integers."""
    return operating_income * 10 < MIN_COVERAGE[loan_type] * interest


# --- structural equations ----------------------------------------------------------------


def _sector(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    g, first = _groups(p["company_id"])
    return choice_given(rng, SECTOR_MIX, np.zeros(len(first), dtype=np.int64))[g]


def _loan_type(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    g, first = _groups(p["company_id"])
    return choice_given(rng, LOAN_MIX, p["sector"][first])[g]


def _revenue(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    g, first = _groups(p["company_id"])
    base = REVENUE_MEDIAN[p["sector"][first]] * rng.lognormal(0.0, 0.8, len(first))
    growth = rng.normal(0.02, 0.05, len(first))
    quarter = (1.0 + growth[g]) ** p["period"] * rng.normal(1.0, 0.04, n)
    return np.rint(np.maximum(base[g] * quarter, 1e6)).astype(np.int64)


def _cogs(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    share = np.clip(COGS_SHARE[p["sector"]] + rng.normal(0.0, 0.05, n), 0.05, 0.98)
    return np.floor(p["revenue_cents"] * share).astype(np.int64)


def _gross_profit(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return p["revenue_cents"] - p["cogs_cents"]


def _opex(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    share = np.clip(OPEX_SHARE[p["sector"]] + rng.normal(0.0, 0.05, n), 0.02, 0.9)
    return np.floor(p["revenue_cents"] * share).astype(np.int64)


def _operating_income(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return p["gross_profit_cents"] - p["opex_cents"]


def _liabilities(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    g, first = _groups(p["company_id"])
    annual = 4.0 * p["revenue_cents"][first]
    debt = annual * LEVERAGE[p["sector"][first]] * rng.lognormal(0.0, 0.5, len(first))
    return np.rint(debt[g] * rng.normal(1.0, 0.03, n)).astype(np.int64)


def _interest(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return interest_due(p["liabilities_cents"], p["loan_type"])


def _tax(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return income_tax(p["operating_income_cents"], p["interest_cents"])


def _net_income(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return p["operating_income_cents"] - p["interest_cents"] - p["tax_cents"]


def _dividends(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    payout = rng.integers(20, 61, n)
    pays = (p["net_income_cents"] > 0) & (rng.random(n) < 0.5)
    return np.where(pays, p["net_income_cents"] * payout // 100, 0)


def _equity_open(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    g, first = _groups(p["company_id"])
    opening = np.rint(4.0 * p["revenue_cents"][first] * rng.lognormal(-0.3, 0.4, len(first)))
    retained = p["net_income_cents"] - p["dividends_cents"]
    before = np.cumsum(retained) - retained  # retained earnings of all earlier rows
    return opening.astype(np.int64)[g] + before - before[first][g]


def _equity_close(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return p["equity_open_cents"] + p["net_income_cents"] - p["dividends_cents"]


def _assets(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return p["liabilities_cents"] + p["equity_close_cents"]


def _covenant(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return covenant_breached(p["operating_income_cents"], p["interest_cents"], p["loan_type"])


# --- invariant recomputations --------------------------------------------------------------


def _interest_of(c: Columns) -> np.ndarray:
    return interest_due(c["liabilities_cents"], c["loan_type"])


def _tax_of(c: Columns) -> np.ndarray:
    return income_tax(c["operating_income_cents"], c["interest_cents"])


def _covenant_of(c: Columns) -> np.ndarray:
    return covenant_breached(c["operating_income_cents"], c["interest_cents"], c["loan_type"])


def build() -> WorldSpec:
    cat, num = VarDomain, VarDomain

    def cents(low: float | None = None) -> VarDomain:
        return num("int64", low, unit="cents")

    company = ("company_id",)
    variables = [
        Variable(
            "sector",
            company,
            _sector,
            cat("category", categories=SECTORS),
            "industry sector (fixed per company)",
        ),
        Variable(
            "loan_type",
            (*company, "sector"),
            _loan_type,
            cat("category", categories=LOAN_TYPES),
            "the company's main debt facility",
        ),
        Variable(
            "revenue_cents", (*company, "period", "sector"), _revenue, cents(0), "quarterly revenue"
        ),
        Variable("cogs_cents", ("revenue_cents", "sector"), _cogs, cents(0), "cost of goods sold"),
        Variable(
            "gross_profit_cents",
            ("revenue_cents", "cogs_cents"),
            _gross_profit,
            cents(),
            "revenue less cost of goods sold",
        ),
        Variable("opex_cents", ("revenue_cents", "sector"), _opex, cents(0), "operating expenses"),
        Variable(
            "operating_income_cents",
            ("gross_profit_cents", "opex_cents"),
            _operating_income,
            cents(),
            "operating income (EBIT)",
        ),
        Variable(
            "liabilities_cents",
            (*company, "revenue_cents", "sector"),
            _liabilities,
            cents(0),
            "total liabilities at quarter end",
        ),
        Variable(
            "interest_cents",
            ("liabilities_cents", "loan_type"),
            _interest,
            cents(0),
            "interest expense",
        ),
        Variable(
            "tax_cents",
            ("operating_income_cents", "interest_cents"),
            _tax,
            cents(0),
            "income tax expense",
        ),
        Variable(
            "net_income_cents",
            ("operating_income_cents", "interest_cents", "tax_cents"),
            _net_income,
            cents(),
            "net income",
        ),
        Variable(
            "dividends_cents", ("net_income_cents",), _dividends, cents(0), "dividends declared"
        ),
        Variable(
            "equity_open_cents",
            (*company, "revenue_cents", "net_income_cents", "dividends_cents"),
            _equity_open,
            cents(),
            "equity at the start of the quarter",
        ),
        Variable(
            "equity_close_cents",
            ("equity_open_cents", "net_income_cents", "dividends_cents"),
            _equity_close,
            cents(),
            "equity at quarter end",
        ),
        Variable(
            "assets_cents",
            ("liabilities_cents", "equity_close_cents"),
            _assets,
            cents(),
            "total assets at quarter end",
        ),
        Variable(
            "covenant_breached",
            ("operating_income_cents", "interest_cents", "loan_type"),
            _covenant,
            num("bool"),
            "interest coverage below the loan's minimum",
        ),
    ]
    invariants = [
        Invariant(
            "gross_profit_identity",
            "gross profit = revenue - COGS",
            (SignedSum((("revenue_cents", 1), ("cogs_cents", -1), ("gross_profit_cents", -1))),),
        ),
        Invariant(
            "operating_income_identity",
            "operating income = gross profit - opex",
            (
                SignedSum(
                    (("gross_profit_cents", 1), ("opex_cents", -1), ("operating_income_cents", -1))
                ),
            ),
        ),
        Invariant(
            "net_income_identity",
            "net income = operating income - interest - tax",
            (
                SignedSum(
                    (
                        ("operating_income_cents", 1),
                        ("interest_cents", -1),
                        ("tax_cents", -1),
                        ("net_income_cents", -1),
                    )
                ),
            ),
        ),
        Invariant(
            "balance_sheet_identity",
            "assets = liabilities + equity",
            (
                SignedSum(
                    (("assets_cents", 1), ("liabilities_cents", -1), ("equity_close_cents", -1))
                ),
            ),
        ),
        Invariant(
            "equity_roll_forward",
            "closing equity = opening + net income - dividends",
            (
                SignedSum(
                    (
                        ("equity_open_cents", 1),
                        ("net_income_cents", 1),
                        ("dividends_cents", -1),
                        ("equity_close_cents", -1),
                    )
                ),
            ),
        ),
        Invariant(
            "equity_carried_forward",
            "a quarter opens with the prior quarter's close",
            (CarriedForward("equity_open_cents", "equity_close_cents", "company_id", "period"),),
        ),
        Invariant(
            "tax_at_statutory_rate",
            f"tax = {TAX_RATE_PCT}% of positive pre-tax income",
            (Recomputed("tax_cents", ("operating_income_cents", "interest_cents"), _tax_of),),
        ),
        Invariant(
            "interest_at_contract_rate",
            "interest = liabilities * loan rate / 4",
            (Recomputed("interest_cents", ("liabilities_cents", "loan_type"), _interest_of),),
        ),
        Invariant(
            "covenant_exact",
            "breached exactly when EBIT / interest < the loan's minimum",
            (
                Recomputed(
                    "covenant_breached",
                    ("operating_income_cents", "interest_cents", "loan_type"),
                    _covenant_of,
                ),
            ),
        ),
        Invariant(
            "period_unique",
            "one record per company and quarter",
            (Unique(("company_id", "period")),),
        ),
    ]
    ids = IdScheme(record="record_id", entity="company_id", per_entity=PERIODS, period="period")
    return WorldSpec("financial", "1", variables, invariants, ids=ids)
