"""Legal world: tables, structural equations, invariant recomputations and ``build()``."""

from __future__ import annotations

import numpy as np

from worldgen.calc import FINDINGS, REQUIRED_ELEMENTS, limitation
from worldgen.domains.legal.calendar import filing_deadline
from worldgen.rules import AllowedPairs, Condition, ConditionalRange, Greater, Invariant, Recomputed
from worldgen.spec import Columns, IdScheme, VarDomain, Variable, WorldSpec, choice_given

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

# Years to file, per (jurisdiction, claim): the table cited in the package docstring lives in the
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
AS_OF = 20453  # 2025-12-31, the day the world is observed: a case judged by then was filed by then
BAR_INPUTS = ("incident_date", "filing_date", "limitation_years")


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
    filed = np.select([mode < 0.65, mode < 0.85], [timely, near], late)
    # Every case has its judgment, so a draw after the as-of date is filed in time before it.
    last = np.minimum(deadline, AS_OF)
    again = incident + np.floor(rng.random(n) * (last - incident + 1)).astype(np.int64)
    return np.where(filed > AS_OF, again, filed)


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
            num("date", INCIDENT_FIRST, AS_OF, unit="date"),
            "date the suit was filed",
        ),
        Variable(
            "time_barred",
            BAR_INPUTS,
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
            (Recomputed("time_barred", BAR_INPUTS, _barred),),
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
            "award_if_liable",
            "a liable judgment awards damages (every claim requires them)",
            (ConditionalRange("awarded_cents", Condition("ruling", "liable"), low=1),),
        ),
        Invariant(
            "judged_by_as_of",
            "a judged case was filed on or before the as-of date, 2025-12-31",
            tuple(
                ConditionalRange("filing_date", Condition("ruling", r), high=AS_OF) for r in RULINGS
            ),
        ),
        Invariant(
            "claim_within_bounds",
            "the amount claimed is within the claim's bounds",
            tuple(
                ConditionalRange("claimed_cents", Condition("claim_type", c), low=low, high=high)
                for c, (low, high) in CLAIM_BOUNDS.items()
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
    # 2: no filing after the as-of date; a liable judgment awards something
    return WorldSpec("legal", "2", variables, invariants, ids=ids)
