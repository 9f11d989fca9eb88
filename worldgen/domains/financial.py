"""Company quarters: sector -> revenue -> costs -> income statement -> equity roll-forward and
balance sheet; debt -> interest -> coverage covenant.

Each company has four consecutive quarterly records (``period`` 0-3). All money is integer
cents, so every identity is exact.

Real relations (cited):
  * Income statement: revenue - COGS = gross profit; gross profit - operating expenses =
    operating income (EBIT); EBIT - interest - income tax = net income.
  * Balance sheet: assets = liabilities + equity; clean-surplus roll-forward: closing equity =
    opening equity + net income - dividends, and a period opens where the last one closed.
  * US federal corporate income tax is a flat 21% (26 U.S.C. §11(b), as amended by the Tax
    Cuts and Jobs Act of 2017).
  * Interest coverage ratio = EBIT / interest expense, a standard maintenance covenant.
Illustrative (invented, not market terms): tax charged each quarter on that quarter's pre-tax
profit (losses give zero tax, no carry-forward), rounded down to the cent; the interest rate
per loan type (interest = liabilities * annual rate / 4, rounded half up to the cent); the
minimum coverage per loan type; the sector margins and every distribution.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd

from worldgen.faults import FaultMode, Tables, pick, record_ids, set_values
from worldgen.render import (
    Fact,
    Joint,
    Kind,
    Path,
    Program,
    Question,
    Renderer,
    Reveal,
    Row,
    Values,
    lookups,
    money_field,
    paths,
    shown,
    shown_where,
    stated_field,
    yes_no,
)
from worldgen.spec import (
    CarriedForward,
    Columns,
    IdScheme,
    Invariant,
    Recomputed,
    SignedSum,
    Unique,
    VarDomain,
    Variable,
    WorldSpec,
    choice_given,
)

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


# --- documents and questions -------------------------------------------------------------


def ratio(numerator: int, denominator: int) -> str:
    """Canonical ratio: two decimals, half up (exact, from integers)."""
    value = Decimal(numerator) / Decimal(denominator)
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _breached(row: Row) -> bool:
    ebit, interest = int(row["operating_income_cents"]), int(row["interest_cents"])
    return ebit * 10 < MIN_COVERAGE_TENTHS[row["loan_type"]] * interest


REV, COGS, GP, OPEX = "revenue_cents", "cogs_cents", "gross_profit_cents", "opex_cents"
EBIT, INT, TAX, NI = "operating_income_cents", "interest_cents", "tax_cents", "net_income_cents"
DIV, OPEN, CLOSE = "dividends_cents", "equity_open_cents", "equity_close_cents"
LIAB, ASSETS = "liabilities_cents", "assets_cents"


# EBIT as stated, or as its derivation from what is stated (``worldgen.calc`` language)
EBIT_FROM = {
    (EBIT,): f"{{{EBIT}}}",
    (GP, OPEX): f"({{{GP}}} - {{{OPEX}}})",
    (REV, COGS, OPEX): f"({{{REV}}} - {{{COGS}}} - {{{OPEX}}})",
}

# What the statements give away beyond the paths (``Question.revealed_by``). Each identity's
# member follows from the others; each rule's output from its inputs.
IDENTITIES: tuple[tuple[str, ...], ...] = (
    (REV, COGS, GP),
    (GP, OPEX, EBIT),
    (EBIT, INT, TAX, NI),
    (CLOSE, OPEN, NI, DIV),
    (ASSETS, LIAB, CLOSE),
)
RULES = (
    ((LIAB, "loan_type"), INT),
    ((EBIT, INT), TAX),
    ((EBIT, INT, "loan_type"), "covenant_breached"),
)


def known_from(stated: Iterable[str]) -> set[str]:
    """Every figure the stated ones fix, solving identities and rules until nothing changes."""
    known = set(stated)
    while True:
        found = {
            rest[0]
            for ident in IDENTITIES
            if len(rest := [k for k in ident if k not in known]) == 1
        }
        found |= {out for inputs, out in RULES if known.issuperset(inputs)}
        if found <= known:
            return known
        known |= found


def follows(*keys: str) -> Reveal:
    """``revealed_by``: the stated figures fix every one of ``keys``."""
    return lambda values: known_from(values).issuperset(keys)


def _not_positive(value: str) -> bool:
    return value.startswith("-") or value == "0.00"


# no pre-tax profit (zero tax or EBIT at most zero): coverage under 1, below every covenant
# minimum, and no net income to pay dividends from
NO_PROFIT = (shown(TAX, "0.00"), shown_where(EBIT, _not_positive))
BREACH_SHOWN = (follows("covenant_breached"), *NO_PROFIT)
NO_DIVIDEND = (*NO_PROFIT, shown_where(NI, _not_positive))


def _over_ebit(
    *extra: str, rule: Callable[[str], Program] | None = None
) -> tuple[tuple[Any, ...], ...]:
    """A rule over EBIT: stated EBIT is one rule; EBIT from gross profit and opex, or from
    revenue, COGS and opex, adds one or two more. ``rule`` writes the derivation around
    EBIT's own."""
    return tuple(
        ((*needs, *extra), "derived" if len(needs) == 1 else "multistep")
        + (() if rule is None else (rule(ebit),))
        for needs, ebit in EBIT_FROM.items()
    )


def _coverage_rule(compare: str) -> Callable[[str], Program]:
    """EBIT against the loan's minimum coverage times interest (the minimum depends on the loan)."""

    def rule(ebit: str) -> Program:
        def program(values: Values, row: Row) -> str:
            floor = Decimal(MIN_COVERAGE_TENTHS[row["loan_type"]]) / 10
            return f"{ebit} {compare} {floor} * {{{INT}}}".format_map(values)

        return program

    return rule


PER_KIND: dict[Kind, int] = {"lookup": 1, "derived": 2, "multistep": 2, "unknown": 1}
# income-statement lines, stated two to a sentence as filings do (four to a sentence was measured
# and not kept: benchmarks/results/quality-lists4.json)
FIGURES = Joint(
    {
        REV: "revenue",
        COGS: "cost of goods sold",
        GP: "gross profit",
        OPEX: "operating expenses",
        EBIT: "operating income",
        INT: "interest expense",
        TAX: "income tax expense",
        NI: "net income",
    },
    (
        "{Roles} were {values}, respectively.",
        "The company reported {roles} of {values}, respectively.",
    ),
    value="${v}",
)


def renderer() -> Renderer:
    def fact(key: str, label: str, withhold_p: float = 0.15) -> Fact:
        return Fact(
            key,
            (f"{label}: ${{v}}.", f"The company reported {label.lower()} of ${{v}}."),
            money_field(key),
            withhold_p=withhold_p,
        )

    facts = (
        Fact(
            "period",
            ("This report covers fiscal quarter Q{v}.", "Quarter: Q{v}."),
            lambda r: str(int(r["period"]) + 1),
            withhold_p=0.0,
        ),
        Fact(
            "sector",
            ("The company operates in the {v} sector.", "Sector: {v}."),
            stated_field("sector"),
        ),
        Fact(
            "loan_type",
            ("Its main debt facility is a {v}.", "Debt facility: {v}."),
            stated_field("loan_type"),
            withhold_p=0.1,
        ),
        fact(REV, "Revenue", 0.1),
        fact(COGS, "Cost of goods sold", 0.1),
        fact(GP, "Gross profit", 0.6),
        fact(OPEX, "Operating expenses", 0.1),
        fact(EBIT, "Operating income", 0.6),
        fact(LIAB, "Total liabilities"),
        fact(INT, "Interest expense", 0.1),
        fact(TAX, "Income tax expense", 0.3),
        fact(NI, "Net income", 0.5),
        fact(DIV, "Dividends declared"),
        fact(OPEN, "Opening equity"),
        fact(CLOSE, "Closing equity", 0.5),
        fact(ASSETS, "Total assets", 0.4),
        Fact(
            "covenant_breached",
            (
                "Interest-coverage covenant breached: {v}.",
                "The coverage covenant was breached: {v}.",
            ),
            lambda r: yes_no(bool(r["covenant_breached"])),
            withhold_p=0.65,
        ),
    )
    lookups_ = lookups(
        ("What was the company's {label}?", "Report the {label}."),
        (
            ("sector", "sector", stated_field("sector")),
            ("loan_type", "main debt facility", stated_field("loan_type")),
            (REV, "revenue in dollars", money_field(REV)),
            (COGS, "cost of goods sold in dollars", money_field(COGS)),
            (OPEX, "operating expenses in dollars", money_field(OPEX)),
            (INT, "interest expense in dollars", money_field(INT)),
            (DIV, "dividends in dollars", money_field(DIV)),
            (OPEN, "opening equity in dollars", money_field(OPEN)),
        ),
        {key: (follows(key),) for key in (REV, COGS, OPEX, INT, OPEN)}
        | {DIV: (follows(DIV), *NO_DIVIDEND)},
    )

    def breach_paths(compare: str) -> tuple[Path, ...]:
        return paths(
            (("covenant_breached",), "lookup"),
            *_over_ebit(INT, "loan_type", rule=_coverage_rule(compare)),
        )

    reasoned = (
        Question(
            "gross_profit",
            ("What was gross profit, in dollars?",),
            money_field(GP),
            paths(((GP,), "lookup"), ((REV, COGS), "derived", f"{{{REV}}} - {{{COGS}}}")),
            (follows(GP),),
        ),
        Question(
            "operating_income",
            (
                "What was operating income (EBIT), in dollars?",
                "How much did the company earn from operations?",
            ),
            money_field(EBIT),
            paths(
                ((EBIT,), "lookup"),
                ((GP, OPEX), "derived", f"{{{GP}}} - {{{OPEX}}}"),
                ((REV, COGS, OPEX), "multistep", f"{{{REV}}} - {{{COGS}}} - {{{OPEX}}}"),
            ),
            (follows(EBIT),),
        ),
        Question(
            "income_tax",
            ("What was the income tax expense, in dollars?",),
            money_field(TAX),
            paths(
                ((TAX,), "lookup"),
                *_over_ebit(
                    INT, rule=lambda e: f"floor(max({e} - {{{INT}}}, 0) * {TAX_RATE_PCT / 100}, 2)"
                ),
            ),
            (follows(TAX),),
        ),
        Question(
            "net_income",
            (
                "What was net income, in dollars?",
                "How much did the company earn after interest and tax?",
            ),
            money_field(NI),
            paths(
                ((NI,), "lookup"),
                *_over_ebit(INT, TAX, rule=lambda e: f"{e} - {{{INT}}} - {{{TAX}}}"),
            ),
            (follows(NI),),
        ),
        Question(
            "interest_coverage",
            (
                "What was the interest coverage ratio (EBIT / interest)?",
                "How many times did operating income cover interest?",
            ),
            lambda r: ratio(int(r[EBIT]), int(r[INT])),
            paths(*_over_ebit(INT, rule=lambda e: f"round({e} / {{{INT}}}, 2)")),
            (follows(EBIT, INT),),
        ),
        Question(
            "covenant_breached",
            (
                "Was the interest-coverage covenant breached?",
                "Did the company breach its coverage covenant?",
            ),
            lambda r: yes_no(_breached(r)),
            breach_paths("<"),
            BREACH_SHOWN,
        ),
        Question(
            "covenant_compliant",
            ("Was the company in compliance with its coverage covenant?",),
            lambda r: yes_no(not _breached(r)),
            breach_paths(">="),
            BREACH_SHOWN,
        ),
        Question(
            "equity_close",
            ("What was closing equity, in dollars?",),
            money_field(CLOSE),
            paths(
                ((CLOSE,), "lookup"),
                ((ASSETS, LIAB), "derived", f"{{{ASSETS}}} - {{{LIAB}}}"),
                ((OPEN, NI, DIV), "derived", f"{{{OPEN}}} + {{{NI}}} - {{{DIV}}}"),
                (
                    (OPEN, EBIT, INT, TAX, DIV),
                    "multistep",
                    f"{{{OPEN}}} + {{{EBIT}}} - {{{INT}}} - {{{TAX}}} - {{{DIV}}}",
                ),
            ),
            (follows(CLOSE),),
        ),
        Question(
            "total_assets",
            ("What were total assets, in dollars?",),
            money_field(ASSETS),
            paths(
                ((ASSETS,), "lookup"),
                ((LIAB, CLOSE), "derived", f"{{{LIAB}}} + {{{CLOSE}}}"),
                (
                    (LIAB, OPEN, NI, DIV),
                    "multistep",
                    f"{{{LIAB}}} + {{{OPEN}}} + {{{NI}}} - {{{DIV}}}",
                ),
            ),
            (follows(ASSETS),),
        ),
        Question(
            "total_liabilities",
            ("What were total liabilities, in dollars?",),
            money_field(LIAB),
            paths(((LIAB,), "lookup"), ((ASSETS, CLOSE), "derived", f"{{{ASSETS}}} - {{{CLOSE}}}")),
            (follows(LIAB),),
        ),
    )
    # Two derived and two multi-step questions per record keep reasoning the majority.
    return Renderer(facts, lookups_ + reasoned, PER_KIND, (FIGURES,))


# --- fault modes ---------------------------------------------------------------------------


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
