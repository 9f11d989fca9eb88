"""Financial documents and questions: ``renderer()`` and its helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from worldgen.distract import Distractor, moved_money
from worldgen.domains.financial.world import MIN_COVERAGE_TENTHS, TAX_RATE_PCT
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
# other names statements give a line (the hand-written label comes first)
SYNONYMS: dict[str, tuple[str, ...]] = {
    REV: ("sales", "total revenue"),
    COGS: ("cost of sales", "COGS"),
    GP: ("gross margin in dollars",),
    OPEX: ("operating costs", "OpEx"),
    EBIT: ("EBIT", "operating profit"),
    INT: ("interest paid", "interest cost"),
    TAX: ("tax expense", "provision for income taxes"),
    NI: ("net profit", "bottom line"),
    DIV: ("dividends", "dividends paid"),
    OPEN: ("equity at the start of the quarter", "opening shareholders' equity"),
    CLOSE: ("equity at the end of the quarter", "closing shareholders' equity"),
    ASSETS: ("assets", "total assets on the balance sheet"),
    LIAB: ("liabilities", "total debts and obligations"),
}


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


def _other(name: str, of: str, *templates: str) -> Distractor:
    return Distractor(name, of, templates, moved_money(of), kind="money")


# other periods' and plans' figures a filing gives beside this quarter's
DISTRACTORS = (
    _other("prior_revenue", REV, "Revenue in the prior year was {v}.", "Prior-year revenue: {v}."),
    _other(
        "prior_net_income",
        NI,
        "Net income in the same quarter last year was {v}.",
        "Prior-year net income: {v}.",
    ),
    _other("budgeted_cogs", COGS, "Budgeted cost of goods sold was {v}.", "Budgeted COGS: {v}."),
    _other(
        "prior_opex",
        OPEX,
        "Operating expenses in the previous quarter were {v}.",
        "Last quarter's operating expenses: {v}.",
    ),
    _other(
        "prior_assets", ASSETS, "Total assets a year earlier were {v}.", "Prior-year assets: {v}."
    ),
)


def renderer() -> Renderer:
    def fact(key: str, label: str, withhold_p: float = 0.15) -> Fact:
        return Fact(
            key,
            (f"{label}: {{v}}.", f"The company reported {label.lower()} of {{v}}."),
            money_field(key),
            withhold_p=withhold_p,
            kind="money",
            labels=(label.lower(), *SYNONYMS.get(key, ())),
        )

    facts = (
        Fact(
            "period",
            ("This report covers fiscal quarter Q{v}.", "Quarter: Q{v}."),
            lambda r: str(int(r["period"]) + 1),
            withhold_p=0.0,
            labels=("fiscal quarter", "quarter"),
        ),
        Fact(
            "sector",
            ("The company operates in the {v} sector.", "Sector: {v}."),
            stated_field("sector"),
            labels=("sector", "industry"),
        ),
        Fact(
            "loan_type",
            ("Its main debt facility is a {v}.", "Debt facility: {v}."),
            stated_field("loan_type"),
            withhold_p=0.1,
            labels=("debt facility", "main debt facility", "loan type"),
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
            labels=("interest-coverage covenant breached", "coverage covenant breached"),
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
        """Breached (``<``) or compliant (``>=``): a stated breach read off, or the rule."""
        stated = "{covenant_breached}" if compare == "<" else "not {covenant_breached}"
        return paths(
            (("covenant_breached",), "lookup", stated),
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
    return Renderer(facts, lookups_ + reasoned, PER_KIND, (FIGURES,), DISTRACTORS)
