"""Legal documents and questions: ``renderer()`` and its helpers."""

from __future__ import annotations

import datetime as dt

from worldgen.calc import FLAGS, GAP, elements, limitation
from worldgen.distract import Distractor, earlier_date, moved_money
from worldgen.domains.legal.calendar import deadline_iso
from worldgen.domains.legal.world import (
    ALLOWED_DEFENCE,
    CLAIMS,
    ELEMENTS,
    JURISDICTIONS,
)
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


def _limitation(row: Row) -> int:
    return limitation(row["jurisdiction"].lower(), row["claim_type"])


def _deadline(row: Row) -> str:
    return deadline_iso(row["incident_date"], _limitation(row))


def _days_to_file(row: Row) -> str:
    days = dt.date.fromisoformat(row["filing_date"]) - dt.date.fromisoformat(row["incident_date"])
    return str(days.days)


DATES = ("incident_date", "filing_date")
# other parties' figures and other events' dates a judgment mentions in passing
DISTRACTORS = (
    Distractor(
        "codefendant_claim",
        "claimed_cents",
        ("A co-defendant claimed {v} in a separate action.", "The co-defendant's claim: {v}."),
        moved_money("claimed_cents"),
        kind="money",
    ),
    Distractor(
        "settlement_offer",
        "awarded_cents",
        ("Before trial the defendant offered {v} to settle.", "Settlement offer refused: {v}."),
        moved_money("awarded_cents"),
        kind="money",
    ),
    Distractor(
        "related_filing",
        "filing_date",
        ("A related action was filed on {v}.", "Related action filed: {v}."),
        earlier_date("filing_date"),
        kind="date",
    ),
    Distractor(
        "earlier_incident",
        "incident_date",
        ("An earlier, unrelated incident occurred on {v}.", "Earlier incident: {v}."),
        earlier_date("incident_date"),
        kind="date",
    ),
)
STATUTE = ("jurisdiction", "claim_type")
DEADLINE = "add_years({incident_date}, {limitation_years})"
# the period from the statute table when the text does not state it
BY_STATUTE = "limitation('{jurisdiction}', '{claim_type}')"
DEADLINE_BY_STATUTE = f"add_years({{incident_date}}, {BY_STATUTE})"


def _bar(compare: str) -> tuple[tuple[object, ...], ...]:
    """Time bar: stated; from dates and the limitation period (one rule); from dates and the
    statute (the limitation table, then the bar: two rules)."""
    return (
        (("time_barred",), "lookup", "{time_barred}" if compare == ">" else "not {time_barred}"),
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


def _ruling_paths(judgment: str, stated: str | None = None) -> tuple[tuple[object, ...], ...]:
    """Stated (a yes / no read off it as ``stated``); or the liability rule over what is
    stated, read as ``judgment`` (``{}`` for yes / no, ``liable({})`` for the judgment's words)."""
    return (
        (("ruling",), "lookup", stated),
        *(
            (needs, kind, judgment.format(_liability(proven, barred)))
            for needs, kind, proven, barred in LIABILITY_PATHS
        ),
    )


def _finding_against(values: Values) -> bool:
    """The stated findings fail the claim (every claim, when the claim is not stated): the
    derivation language's elements() decides, so the reveal and the rule cannot disagree."""
    claim = values.get("claim_type", GAP)
    findings = (FLAGS.get(values.get(e, ""), GAP) for e in ELEMENTS)
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
            labels=("governing law", "jurisdiction"),
        ),
        Fact(
            "claim_type",
            ("The plaintiff sued for {v}.", "Cause of action: {v}."),
            stated_field("claim_type"),
            labels=("cause of action", "claim"),
        ),
        Fact(
            "limitation_years",
            ("The limitation period is {v} years.", "Time allowed to file: {v} years."),
            stated_field("limitation_years"),
            withhold_p=0.6,
            kind="number",
            labels=("limitation period", "time allowed to file"),
            unit="years",
        ),
        Fact(
            "incident_date",
            ("The incident occurred on {v}.", "Date of the incident: {v}."),
            stated_field("incident_date"),
            withhold_p=0.15,
            kind="date",
            labels=("incident date", "date of the incident"),
        ),
        Fact(
            "filing_date",
            ("The complaint was filed on {v}.", "Suit filed: {v}."),
            stated_field("filing_date"),
            withhold_p=0.15,
            kind="date",
            labels=("filing date", "date of filing"),
        ),
        Fact(
            "time_barred",
            ("Time-barred: {v}.", "The claim is barred by limitation: {v}."),
            flag_field("time_barred"),
            withhold_p=0.65,
            labels=("time-barred", "barred by limitation"),
        ),
        Fact(
            "element_duty",
            ("Duty owed to the plaintiff established: {v}.", "Finding on duty or obligation: {v}."),
            flag_field("element_duty"),
            withhold_p=0.15,
            labels=("duty established", "finding on duty"),
        ),
        Fact(
            "element_breach",
            ("Breach established: {v}.", "Finding on breach: {v}."),
            flag_field("element_breach"),
            withhold_p=0.15,
            labels=("breach established", "finding on breach"),
        ),
        Fact(
            "element_causation",
            ("Causation established: {v}.", "Finding on causation or reliance: {v}."),
            flag_field("element_causation"),
            withhold_p=0.15,
            labels=("causation established", "finding on causation"),
        ),
        Fact(
            "element_damages",
            ("Damages established: {v}.", "Finding on damages: {v}."),
            flag_field("element_damages"),
            withhold_p=0.15,
            labels=("damages established", "finding on damages"),
        ),
        Fact(
            "elements_met",
            (
                "All required elements were proven: {v}.",
                "Every element of the claim established: {v}.",
            ),
            flag_field("elements_met"),
            withhold_p=0.6,
            labels=("all elements proven", "elements met"),
        ),
        Fact(
            "defence",
            ("Defence raised: {v}.", "The defendant pleaded: {v}."),
            stated_field("defence"),
            labels=("defence raised", "defence"),
        ),
        Fact(
            "defence_valid",
            ("Defence upheld by the court: {v}.", "The defence succeeded: {v}."),
            flag_field("defence_valid"),
            withhold_p=0.15,
            labels=("defence upheld", "defence succeeded"),
        ),
        Fact(
            "ruling",
            ("The court found the defendant {v}.", "Judgment: {v}."),
            stated_field("ruling"),
            withhold_p=0.65,
            labels=("judgment", "ruling"),
        ),
        Fact(
            "claimed_cents",
            ("The plaintiff claimed {v}.", "Damages sought: {v}."),
            money_field("claimed_cents"),
            kind="money",
            labels=("amount claimed", "damages sought"),
        ),
        Fact(
            "awarded_cents",
            ("The court awarded {v}.", "Damages awarded: {v}."),
            money_field("awarded_cents"),
            withhold_p=0.3,
            kind="money",
            labels=("amount awarded", "damages awarded"),
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
            paths(
                (("elements_met",), "lookup", "{elements_met}"),
                (("claim_type", *ELEMENTS), "derived", PROVEN),
            ),
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
            paths(*_ruling_paths("{}", "'{ruling}' == 'liable'")),
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
    return Renderer(facts, lookups_ + reasoned, PER_KIND, (EVENTS,), DISTRACTORS)
