"""Civil cases: jurisdiction and claim -> limitation period -> time bar; facts -> elements ->
ruling; ruling and claim -> damages.

Real limitation periods (cited, years from the incident):
  * California Code of Civil Procedure: personal-injury negligence 2 (§335.1), written
    contract 4 (§337(a)), oral contract 2 (§339(1)), libel/slander 1 (§340(c)),
    fraud 3 (§338(d)).
  * New York CPLR: personal injury 3 (214(5)), contract, written or oral, 6 (213(2)),
    defamation 1 (215(3)), fraud 6 (213(8)).
  * Texas Civil Practice and Remedies Code: personal injury 2 (§16.003(a)), contract
    (debt), written or oral, 4 (§16.004(a)(3), §16.051), defamation 1 (§16.002(a)),
    fraud 4 (§16.004(a)(4)).
Illustrative (not legal advice): the deadline is the same calendar day N years after the
incident (29 February -> 28 February) and a filing on that day is timely (discovery rules and
tolling ignored); the elements each claim requires are a simplification of the common-law
elements; the defences allowed per claim, the success rates, the claim bounds and the award
caps are invented.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from worldgen.calc import FINDINGS, GAP, REQUIRED_ELEMENTS, elements, limitation
from worldgen.faults import FaultMode, Tables, is_label, pick, record_ids, set_values
from worldgen.render import (
    Fact,
    Joint,
    Kind,
    Question,
    Renderer,
    Reveal,
    Row,
    Values,
    flag_field,
    lookups,
    money,
    money_field,
    paths,
    shown,
    shown_where,
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
    IdScheme,
    Invariant,
    Recomputed,
    VarDomain,
    Variable,
    WorldSpec,
    choice_given,
)

JURISDICTIONS = ("California", "New York", "Texas")
CLAIMS = (
    "negligence",
    "breach of written contract",
    "breach of oral contract",
    "defamation",
    "fraud",
)
DEFENCES = (
    "none",
    "assumption of risk",
    "release",
    "impossibility",
    "statute of frauds",
    "truth",
    "privilege",
)
RULINGS = ("not liable", "liable")
ELEMENTS = tuple(f"element_{finding}" for finding in FINDINGS)
NOT_LIABLE, LIABLE = 0, 1
NEGLIGENCE, WRITTEN, ORAL, DEFAMATION, FRAUD = range(5)

# Years to file, per (jurisdiction, claim): the table cited in the module docstring lives in the
# derivation language, whose limitation() is its one reader
LIMITATION = np.array(
    [[limitation(j.lower(), c) for c in CLAIMS] for j in JURISDICTIONS], dtype=np.int64
)

# Elements each claim requires, in ELEMENTS order: the table lives in the derivation language,
# whose elements() is its one reader
REQUIRED = np.array([[f in REQUIRED_ELEMENTS[c] for f in FINDINGS] for c in CLAIMS])

ALLOWED_DEFENCE = {  # illustrative
    "negligence": ("none", "assumption of risk", "release"),
    "breach of written contract": ("none", "release", "impossibility"),
    "breach of oral contract": ("none", "release", "impossibility", "statute of frauds"),
    "defamation": ("none", "truth", "privilege"),
    "fraud": ("none", "release"),
}
DEFENCE_SUCCESS = (0.0, 0.3, 0.4, 0.25, 0.5, 0.35, 0.3)  # illustrative, in DEFENCES order

# Claimed amount bounds and award caps per claim, in cents (illustrative).
CLAIM_BOUNDS = {
    "negligence": (10_000_00, 5_000_000_00),
    "breach of written contract": (5_000_00, 10_000_000_00),
    "breach of oral contract": (1_000_00, 500_000_00),
    "defamation": (10_000_00, 2_000_000_00),
    "fraud": (5_000_00, 5_000_000_00),
}
AWARD_CAP = {
    "negligence": 2_500_000_00,
    "breach of written contract": 6_000_000_00,
    "breach of oral contract": 250_000_00,
    "defamation": 1_000_000_00,
    "fraud": 3_000_000_00,
}
CLAIM_LOW = np.array([CLAIM_BOUNDS[c][0] for c in CLAIMS], dtype=np.int64)
CLAIM_HIGH = np.array([CLAIM_BOUNDS[c][1] for c in CLAIMS], dtype=np.int64)
CAP = np.array([AWARD_CAP[c] for c in CLAIMS], dtype=np.int64)

INCIDENT_FIRST = 15340  # 2012-01-01 as days since 1970-01-01
INCIDENT_LAST = 18992  # 2021-12-31
FILING_LAST = 22644  # 2031-12-31


def _civil(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Day numbers to proleptic Gregorian (year, month, day); H. Hinnant's civil_from_days."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    return yoe + era * 400 + (month <= 2), month, day


def _day_number(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """(year, month, day) to day numbers; H. Hinnant's days_from_civil."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def filing_deadline(incident: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Day number of the same calendar day ``years`` later (29 Feb -> 28 Feb), vectorized."""
    year, month, day = _civil(np.asarray(incident, dtype=np.int64))
    target = year + np.asarray(years, dtype=np.int64)
    leap = (target % 4 == 0) & ((target % 100 != 0) | (target % 400 == 0))
    day = day - ((month == 2) & (day == 29) & ~leap)
    return _day_number(target, month, day)


def deadline_iso(incident_iso: str, years: int) -> str:
    """The same rule on one ISO date (for answers)."""
    d = dt.date.fromisoformat(incident_iso)
    try:
        return d.replace(year=d.year + years).isoformat()
    except ValueError:  # 29 February in a non-leap year
        return d.replace(year=d.year + years, day=28).isoformat()


# --- structural equations ----------------------------------------------------------------


def _jurisdiction(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return choice_given(rng, np.array([[0.4, 0.35, 0.25]]), np.zeros(n, dtype=np.int64))


CLAIM_MIX = np.array(
    [  # per jurisdiction, in CLAIMS order (illustrative)
        [0.35, 0.25, 0.10, 0.15, 0.15],
        [0.30, 0.30, 0.05, 0.15, 0.20],
        [0.40, 0.20, 0.15, 0.10, 0.15],
    ]
)


def _claim_type(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return choice_given(rng, CLAIM_MIX, p["jurisdiction"])


def _limitation_years(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return LIMITATION[p["jurisdiction"], p["claim_type"]]


def _incident_date(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(INCIDENT_FIRST, INCIDENT_LAST + 1, n)


def _filing_date(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    incident = p["incident_date"].astype(np.int64)
    deadline = filing_deadline(incident, p["limitation_years"])
    mode = rng.random(n)
    timely = incident + np.floor(rng.random(n) * (deadline - incident + 1)).astype(np.int64)
    near = deadline + rng.integers(-15, 16, n)  # the hard cases: days either side
    late = deadline + rng.integers(1, 2 * 365, n)
    return np.select([mode < 0.65, mode < 0.85], [timely, near], late)


def _time_barred(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return p["filing_date"] > filing_deadline(p["incident_date"], p["limitation_years"])


def _duty(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random(n) < np.where(REQUIRED[p["claim_type"], 0], 0.9, 0.5)


def _breach(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random(n) < np.where(p["element_duty"], 0.85, 0.4)


def _causation(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    # No breach, hardly any harm caused by one (illustrative).
    rate = np.where(p["element_breach"], 0.85, 0.1)
    return rng.random(n) < np.where(REQUIRED[p["claim_type"], 2], rate, 0.5)


def _damages(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random(n) < np.where(p["claim_type"] == DEFAMATION, 0.75, 0.9)


def elements_met(c: Columns) -> np.ndarray:
    req = REQUIRED[c["claim_type"]]
    met = np.ones(len(req), dtype=bool)
    for i, name in enumerate(ELEMENTS):
        met &= ~req[:, i] | c[name]
    return met


def _elements_met(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return elements_met(p)


DEFENCE_WEIGHTS = np.array(
    [
        [2.0 if d == "none" else (1.0 if d in ALLOWED_DEFENCE[c] else 0.0) for d in DEFENCES]
        for c in CLAIMS
    ]
)


def _defence(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return choice_given(rng, DEFENCE_WEIGHTS, p["claim_type"])


def _defence_valid(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random(n) < np.asarray(DEFENCE_SUCCESS)[p["defence"]]


def ruling(c: Columns) -> np.ndarray:
    liable = c["elements_met"] & ~c["time_barred"] & ~c["defence_valid"]
    return liable.astype(np.int16)  # LIABLE == 1


def _ruling(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return ruling(p)


CLAIM_MEDIAN = np.array([300_000_00, 800_000_00, 60_000_00, 250_000_00, 500_000_00])


def _claimed(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    claim = p["claim_type"]
    cents = CLAIM_MEDIAN[claim] * rng.lognormal(0.0, 1.1, n)
    return np.clip(np.rint(cents), CLAIM_LOW[claim], CLAIM_HIGH[claim]).astype(np.int64)


def _awarded(p: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    share = np.where(rng.random(n) < 0.25, 1.0, 0.3 + 0.7 * rng.random(n))
    award = np.minimum(np.floor(p["claimed_cents"] * share).astype(np.int64), CAP[p["claim_type"]])
    return np.where(p["ruling"] == LIABLE, award, 0)


# --- invariant recomputations --------------------------------------------------------------


def _limitation_of(c: Columns) -> np.ndarray:
    return LIMITATION[c["jurisdiction"], c["claim_type"]]


def _barred(c: Columns) -> np.ndarray:
    return c["filing_date"] > filing_deadline(c["incident_date"], c["limitation_years"])


def _pairs(table: dict[str, tuple[str, ...]]) -> frozenset[tuple[str, str]]:
    return frozenset((a, b) for a, bs in table.items() for b in bs)


def build() -> WorldSpec:
    cat, num = VarDomain, VarDomain
    flag = num("bool")
    variables = [
        Variable(
            "jurisdiction",
            (),
            _jurisdiction,
            cat("category", categories=JURISDICTIONS),
            "state whose law governs the case",
        ),
        Variable(
            "claim_type",
            ("jurisdiction",),
            _claim_type,
            cat("category", categories=CLAIMS),
            "cause of action (the statute sued under)",
        ),
        Variable(
            "limitation_years",
            ("jurisdiction", "claim_type"),
            _limitation_years,
            num("int64", 1, 10, unit="years"),
            "limitation period for the claim",
        ),
        Variable(
            "incident_date",
            (),
            _incident_date,
            num("date", INCIDENT_FIRST, INCIDENT_LAST, unit="date"),
            "date of the incident",
        ),
        Variable(
            "filing_date",
            ("incident_date", "limitation_years"),
            _filing_date,
            num("date", INCIDENT_FIRST, FILING_LAST, unit="date"),
            "date the suit was filed",
        ),
        Variable(
            "time_barred",
            ("incident_date", "filing_date", "limitation_years"),
            _time_barred,
            flag,
            "filed after the limitation period ran out",
        ),
        Variable(
            "element_duty",
            ("claim_type",),
            _duty,
            flag,
            "a duty or obligation owed to the plaintiff was established",
        ),
        Variable(
            "element_breach",
            ("element_duty",),
            _breach,
            flag,
            "breach (or the wrongful act or statement) was established",
        ),
        Variable(
            "element_causation",
            ("claim_type", "element_breach"),
            _causation,
            flag,
            "causation (or reliance) was established",
        ),
        Variable(
            "element_damages",
            ("claim_type",),
            _damages,
            flag,
            "damages to the plaintiff were established",
        ),
        Variable(
            "elements_met",
            ("claim_type", *ELEMENTS),
            _elements_met,
            flag,
            "every element the claim requires was established",
        ),
        Variable(
            "defence",
            ("claim_type",),
            _defence,
            cat("category", categories=DEFENCES),
            "affirmative defence raised",
        ),
        Variable(
            "defence_valid", ("defence",), _defence_valid, flag, "the court upheld the defence"
        ),
        Variable(
            "ruling",
            ("elements_met", "time_barred", "defence_valid"),
            _ruling,
            cat("category", categories=RULINGS),
            "judgment on liability",
        ),
        Variable(
            "claimed_cents",
            ("claim_type",),
            _claimed,
            num("int64", 1, unit="cents"),
            "damages claimed",
        ),
        Variable(
            "awarded_cents",
            ("ruling", "claimed_cents", "claim_type"),
            _awarded,
            num("int64", 0, unit="cents"),
            "damages awarded",
        ),
    ]
    invariants = [
        Invariant(
            "filed_after_incident",
            "the suit is filed on or after the incident",
            (Greater("filing_date", "incident_date", or_equal=True),),
        ),
        Invariant(
            "limitation_matches_statute",
            "limitation period is the statute's for the jurisdiction and claim",
            (Recomputed("limitation_years", ("jurisdiction", "claim_type"), _limitation_of),),
        ),
        Invariant(
            "time_bar_exact",
            "time-barred exactly when filed after the incident's N-th anniversary",
            (
                Recomputed(
                    "time_barred", ("incident_date", "filing_date", "limitation_years"), _barred
                ),
            ),
        ),
        Invariant(
            "elements_met_exact",
            "elements met exactly when every required element is",
            (Recomputed("elements_met", ("claim_type", *ELEMENTS), elements_met),),
        ),
        Invariant(
            "defence_allowed",
            "the defence is available against the claim",
            (AllowedPairs("claim_type", "defence", _pairs(ALLOWED_DEFENCE)),),
        ),
        Invariant(
            "defence_valid_needs_defence",
            "no defence raised, none upheld",
            (ConditionalRange("defence_valid", Condition("defence", "none"), high=0),),
        ),
        Invariant(
            "ruling_exact",
            "liable exactly when elements are met, not time-barred and no defence upheld",
            (Recomputed("ruling", ("elements_met", "time_barred", "defence_valid"), ruling),),
        ),
        Invariant(
            "award_within_claim",
            "no more is awarded than claimed",
            (Greater("claimed_cents", "awarded_cents", or_equal=True),),
        ),
        Invariant(
            "award_only_if_liable",
            "nothing is awarded without liability",
            (ConditionalRange("awarded_cents", Condition("ruling", "not liable"), high=0),),
        ),
        Invariant(
            "claim_within_bounds",
            "the amount claimed is within the claim's bounds",
            tuple(
                ConditionalRange(
                    "claimed_cents",
                    Condition("claim_type", c),
                    low=CLAIM_BOUNDS[c][0],
                    high=CLAIM_BOUNDS[c][1],
                )
                for c in CLAIMS
            ),
        ),
        Invariant(
            "award_within_cap",
            "the award does not exceed the claim's cap",
            tuple(
                ConditionalRange("awarded_cents", Condition("claim_type", c), high=AWARD_CAP[c])
                for c in CLAIMS
            ),
        ),
    ]
    ids = IdScheme(record="record_id", entity="case_id")
    return WorldSpec("legal", "1", variables, invariants, ids=ids)


# --- documents and questions -------------------------------------------------------------


def _limitation(row: Row) -> int:
    return limitation(row["jurisdiction"].lower(), row["claim_type"])


def _deadline(row: Row) -> str:
    return deadline_iso(row["incident_date"], _limitation(row))


def _days_to_file(row: Row) -> str:
    days = dt.date.fromisoformat(row["filing_date"]) - dt.date.fromisoformat(row["incident_date"])
    return str(days.days)


DATES = ("incident_date", "filing_date")
STATUTE = ("jurisdiction", "claim_type")
DEADLINE = "add_years({incident_date}, {limitation_years})"
# the period from the statute table when the text does not state it
BY_STATUTE = "limitation('{jurisdiction}', '{claim_type}')"
DEADLINE_BY_STATUTE = f"add_years({{incident_date}}, {BY_STATUTE})"


def _bar(compare: str) -> tuple[tuple[object, ...], ...]:
    """Time bar: stated; from dates and the limitation period (one rule); from dates and the
    statute (the limitation table, then the bar: two rules)."""
    return (
        (("time_barred",), "lookup"),
        ((*DATES, "limitation_years"), "derived", f"{{filing_date}} {compare} {DEADLINE}"),
        (
            (*DATES, *STATUTE),
            "multistep",
            f"{{filing_date}} {compare} {DEADLINE_BY_STATUTE}",
        ),
    )


BAR_PATHS = _bar(">")
# Elements from the claim and its findings: the table of what each claim requires, then the
# findings it requires (elements() reads both; a finding the claim does not need cannot matter).
PROVEN = "elements('{claim_type}', " + ", ".join(f"{{{e}}}" for e in ELEMENTS) + ")"
FILED_LATE = f"{{filing_date}} > {DEADLINE}"
FILED_LATE_BY_STATUTE = f"{{filing_date}} > {DEADLINE_BY_STATUTE}"


def _liability(proven: str, barred: str) -> str:
    """Liable when the elements are proven, the claim is not barred and no defence holds."""
    return f"{proven} and not {barred} and not {{defence_valid}}"


LIABILITY_PATHS = (
    (
        ("elements_met", "time_barred", "defence_valid"),
        "derived",
        "{elements_met}",
        "{time_barred}",
    ),
    (
        ("elements_met", *DATES, "limitation_years", "defence_valid"),
        "multistep",
        "{elements_met}",
        FILED_LATE,
    ),
    (
        ("elements_met", *DATES, *STATUTE, "defence_valid"),
        "multistep",
        "{elements_met}",
        FILED_LATE_BY_STATUTE,
    ),
    (
        ("claim_type", *ELEMENTS, "time_barred", "defence_valid"),
        "multistep",
        PROVEN,
        "{time_barred}",
    ),
    (
        ("claim_type", *ELEMENTS, *DATES, "limitation_years", "defence_valid"),
        "multistep",
        PROVEN,
        FILED_LATE,
    ),
    ((*ELEMENTS, *DATES, *STATUTE, "defence_valid"), "multistep", PROVEN, FILED_LATE_BY_STATUTE),
)


def _ruling_paths(judgment: str) -> tuple[tuple[object, ...], ...]:
    """Stated; or the liability rule over what is stated, read as ``judgment`` (``{}`` for
    yes / no, ``liable({})`` for the judgment's words)."""
    return (
        (("ruling",), "lookup"),
        *(
            (needs, kind, judgment.format(_liability(proven, barred)))
            for needs, kind, proven, barred in LIABILITY_PATHS
        ),
    )


FINDING_VALUES = {"yes": True, "no": False}  # a finding as the document states it


def _finding_against(values: Values) -> bool:
    """The stated findings fail the claim (every claim, when the claim is not stated): the
    derivation language's elements() decides, so the reveal and the rule cannot disagree."""
    claim = values.get("claim_type", GAP)
    findings = (FINDING_VALUES.get(values.get(e, ""), GAP) for e in ELEMENTS)
    return elements(claim, *findings) is False


# What a judgment or an award gives away (``Question.revealed_by``): found liable (any award
# above zero), every finding went the plaintiff's way; found not liable, or a finding against
# the plaintiff on an element the claim requires, nothing was awarded.
SHOWS_LIABLE = (shown("ruling", "liable"), shown_where("awarded_cents", lambda v: v != "0.00"))
SHOWS_NOT_LIABLE = (
    shown("ruling", "not liable"),
    shown("awarded_cents", "0.00"),
    shown("elements_met", "no"),
    shown("time_barred", "yes"),
    shown("defence_valid", "yes"),
    _finding_against,
)

# A claim whose period is the same in every jurisdiction fixes it without the law; a defence
# open to one claim only fixes the claim.
ONE_CLAIM_DEFENCES = unique_to_one(ALLOWED_DEFENCE)
FIXED_PERIOD_CLAIMS = tuple(
    c for c in CLAIMS if len({limitation(j.lower(), c) for j in JURISDICTIONS}) == 1
)
PERIOD_SHOWN = (
    shown("claim_type", *FIXED_PERIOD_CLAIMS),
    shown(
        "defence",
        *(
            d
            for d in ONE_CLAIM_DEFENCES
            if any(d in ALLOWED_DEFENCE[c] for c in FIXED_PERIOD_CLAIMS)
        ),
    ),
)


def with_period(*keys: str) -> tuple[Reveal, ...]:
    """``revealed_by``: ``keys`` stated and the period fixed without the governing law."""
    return tuple(
        (lambda values, shows=shows: all(k in values for k in keys) and shows(values))
        for shows in PERIOD_SHOWN
    )


PER_KIND: dict[Kind, int] = {"lookup": 1, "derived": 2, "multistep": 2, "unknown": 1}
# the two dates of the case, often given in one sentence
EVENTS = Joint(
    {"incident_date": "the incident", "filing_date": "the filing of the complaint"},
    (
        "{Roles} took place on {values}, respectively.",
        "The dates of {roles} were {values}, respectively.",
    ),
)


def renderer() -> Renderer:
    facts = (
        Fact(
            "jurisdiction",
            ("The case was heard under {v} law.", "Governing law: {v}."),
            stated_field("jurisdiction"),
        ),
        Fact(
            "claim_type",
            ("The plaintiff sued for {v}.", "Cause of action: {v}."),
            stated_field("claim_type"),
        ),
        Fact(
            "limitation_years",
            ("The limitation period is {v} years.", "Time allowed to file: {v} years."),
            stated_field("limitation_years"),
            withhold_p=0.6,
        ),
        Fact(
            "incident_date",
            ("The incident occurred on {v}.", "Date of the incident: {v}."),
            stated_field("incident_date"),
            withhold_p=0.15,
        ),
        Fact(
            "filing_date",
            ("The complaint was filed on {v}.", "Suit filed: {v}."),
            stated_field("filing_date"),
            withhold_p=0.15,
        ),
        Fact(
            "time_barred",
            ("Time-barred: {v}.", "The claim is barred by limitation: {v}."),
            flag_field("time_barred"),
            withhold_p=0.65,
        ),
        Fact(
            "element_duty",
            ("Duty owed to the plaintiff established: {v}.", "Finding on duty or obligation: {v}."),
            flag_field("element_duty"),
            withhold_p=0.15,
        ),
        Fact(
            "element_breach",
            ("Breach established: {v}.", "Finding on breach: {v}."),
            flag_field("element_breach"),
            withhold_p=0.15,
        ),
        Fact(
            "element_causation",
            ("Causation established: {v}.", "Finding on causation or reliance: {v}."),
            flag_field("element_causation"),
            withhold_p=0.15,
        ),
        Fact(
            "element_damages",
            ("Damages established: {v}.", "Finding on damages: {v}."),
            flag_field("element_damages"),
            withhold_p=0.15,
        ),
        Fact(
            "elements_met",
            (
                "All required elements were proven: {v}.",
                "Every element of the claim established: {v}.",
            ),
            flag_field("elements_met"),
            withhold_p=0.6,
        ),
        Fact(
            "defence",
            ("Defence raised: {v}.", "The defendant pleaded: {v}."),
            stated_field("defence"),
        ),
        Fact(
            "defence_valid",
            ("Defence upheld by the court: {v}.", "The defence succeeded: {v}."),
            flag_field("defence_valid"),
            withhold_p=0.15,
        ),
        Fact(
            "ruling",
            ("The court found the defendant {v}.", "Judgment: {v}."),
            stated_field("ruling"),
            withhold_p=0.65,
        ),
        Fact(
            "claimed_cents",
            ("The plaintiff claimed ${v}.", "Damages sought: ${v}."),
            money_field("claimed_cents"),
        ),
        Fact(
            "awarded_cents",
            ("The court awarded ${v}.", "Damages awarded: ${v}."),
            money_field("awarded_cents"),
            withhold_p=0.3,
        ),
    )
    lookups_ = lookups(
        ("What is the case's {label}?", "Report the {label}."),
        (
            ("jurisdiction", "governing law", stated_field("jurisdiction")),
            ("claim_type", "cause of action", stated_field("claim_type")),
            ("incident_date", "incident date", stated_field("incident_date")),
            ("filing_date", "filing date", stated_field("filing_date")),
            ("defence", "defence raised", stated_field("defence")),
            (
                "defence_valid",
                "outcome of the defence (upheld: yes/no)",
                flag_field("defence_valid"),
            ),
            ("claimed_cents", "amount claimed in dollars", money_field("claimed_cents")),
            ("awarded_cents", "amount awarded in dollars", money_field("awarded_cents")),
            ("element_breach", "finding on breach", flag_field("element_breach")),
        ),
        {
            "claim_type": (shown("defence", *ONE_CLAIM_DEFENCES),),
            "defence_valid": (*SHOWS_LIABLE, shown("defence", "none")),
            "awarded_cents": SHOWS_NOT_LIABLE,
            "element_breach": (*SHOWS_LIABLE, shown("elements_met", "yes")),
        },
    )
    reasoned = (
        Question(
            "limitation_years",
            (
                "How many years did the plaintiff have to file?",
                "What limitation period applies, in years?",
            ),
            lambda r: str(_limitation(r)),
            paths((("limitation_years",), "lookup"), (STATUTE, "derived", BY_STATUTE)),
            PERIOD_SHOWN,
        ),
        Question(
            "filing_deadline",
            (
                "What was the last day to file this suit?",
                "By which date did the complaint have to be filed?",
            ),
            _deadline,
            paths(
                (("incident_date", "limitation_years"), "derived", DEADLINE),
                (("incident_date", *STATUTE), "multistep", DEADLINE_BY_STATUTE),
            ),
            with_period("incident_date"),
        ),
        Question(
            "days_to_file",
            ("How many days passed between the incident and the filing?",),
            _days_to_file,
            paths((DATES, "derived", "days({incident_date}, {filing_date})")),
        ),
        Question(
            "time_barred",
            ("Is the claim time-barred?", "Was the suit filed too late?"),
            flag_field("time_barred"),
            paths(*BAR_PATHS),
            (*SHOWS_LIABLE, *with_period(*DATES)),
        ),
        Question(
            "filed_in_time",
            ("Was the complaint filed within the limitation period?",),
            lambda r: yes_no(not r["time_barred"]),
            paths(*_bar("<=")),
            (*SHOWS_LIABLE, *with_period(*DATES)),
        ),
        Question(
            "elements_met",
            (
                "Did the plaintiff prove every element of the claim?",
                "Were all required elements established?",
            ),
            flag_field("elements_met"),
            paths((("elements_met",), "lookup"), (("claim_type", *ELEMENTS), "derived", PROVEN)),
            (*SHOWS_LIABLE, _finding_against),
        ),
        Question(
            "ruling",
            (
                "Was the defendant found liable or not liable?",
                "What was the judgment on liability?",
            ),
            stated_field("ruling"),
            paths(*_ruling_paths("liable({})")),
            (*SHOWS_LIABLE, *SHOWS_NOT_LIABLE),
        ),
        Question(
            "plaintiff_won",
            ("Did the plaintiff win?",),
            lambda r: yes_no(r["ruling"] == "liable"),
            paths(*_ruling_paths("{}")),
            (*SHOWS_LIABLE, *SHOWS_NOT_LIABLE),
        ),
        Question(
            "unawarded_cents",
            ("How much of the claim, in dollars, was not awarded?",),
            lambda r: money(int(r["claimed_cents"]) - int(r["awarded_cents"])),
            paths(
                (("claimed_cents", "awarded_cents"), "derived", "{claimed_cents} - {awarded_cents}")
            ),
            SHOWS_NOT_LIABLE,
        ),
    )
    # Two derived and two multi-step questions per record keep reasoning the majority.
    return Renderer(facts, lookups_ + reasoned, PER_KIND, (EVENTS,))


# --- fault modes ---------------------------------------------------------------------------


def _days(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy().astype("datetime64[D]").astype(np.int64)


def _ruling_flipped(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    f = t["records"]
    rows = pick(rng, is_label(f, "ruling", "not liable"), n)  # awarded 0 stays consistent
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
        ("ruling_exact",),
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
