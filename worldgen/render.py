"""Records to documents and question/answer pairs whose answers the world model knows.

A domain declares ``Fact``s (how one field reads as a sentence, in several paraphrases) and
``Question``s (how to ask, and which stated facts make the answer derivable, by which path).
For each record the renderer withholds some facts, picks a paraphrase per stated fact,
shuffles the sentences and asks questions of four kinds:

* ``lookup``    the answer is stated in the document;
* ``derived``   one world-model rule over two or more stated facts;
* ``multistep`` two or more rules chained over three or more stated facts;
* ``unknown``   the answer is withheld and not derivable: the canonical answer is ``unknown``.

``unknown`` is never a label for what the document gives away: a rule its stated values decide
despite a gap (``no and unstated``) is answered, and a question a stated value may decide by a
route no path writes (``Question.revealed_by``: an award above zero means liable) is not asked.

A path may carry its *derivation*: the rule written over the stated values in the language of
``worldgen.calc`` (``17203888.06 - 11992130.54``), which computes to exactly the answer. It is
how a model can learn to show its work and leave the arithmetic to an exact evaluator. A yes /
no rule question whose answer the document states reads it off the stated finding (``yes``,
``not yes``, ``'liable' == 'liable'``): it answers as its other paths do, with ``=``, and writes
the negation a question like "filed in time?" asks of "time-barred: yes", which answered
directly the model copied. A figure stated is answered with the figure itself: ``= figure``
would leave the derivation's end to a doubt about the operator after its first figure.

An ``unknown`` question over a rule still carries a derivation when one can be written
honestly: the rule over the path that lacks the fewest facts, with ``unstated`` where each
missing fact's value would go (``121 >= 130 or unstated >= 80``), or just ``unstated`` when
every path would branch on a missing fact. It computes to nothing, so the answer stays
``unknown``; what it teaches is that "is this value stated?" is a decision made at each value
the rule needs, not one guess before the first word (a rule question always starts with ``=``).

Facts of one kind (money figures, dates) may share a sentence, as filings write them: roles
first, values in the same order (``Revenue and interest expense were $x and $y, respectively``;
a joint may allow longer lists). Which value is which is then told only by its place in the
lists, so a question over several such facts takes a step of reading per value before any rule
applies.

A document may also state a *distractor* (``worldgen.distract``): a figure like a fact's that
belongs to something else (last year's revenue), which a careless reader would copy. It states
no fact, so no answer depends on it.

The document keeps its *plan* (fact key, or keys joined by ``+`` for a shared sentence, and
paraphrase index, in sentence order; written down by ``worldgen.plan``) so a validator can
re-render it from the record and demand exact agreement (``worldgen.render_checks``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Final, Literal, cast

import numpy as np

from worldgen.calc import UNSTATED, CalcError, compute, may_decide_despite_gaps
from worldgen.distract import Distractor, place
from worldgen.plan import DISTRACT, JOIN, encode_plan, stated_keys
from worldgen.surface import (
    PLAIN,
    Families,
    Form,
    ValueKind,
    Written,
    fact_forms,
    question_forms,
    write,
    writes,
)
from worldgen.values import money

Row = Mapping[str, Any]
Kind = Literal["lookup", "derived", "multistep", "unknown"]
UNKNOWN: Final = "unknown"
KINDS: tuple[Kind, ...] = ("lookup", "derived", "multistep", "unknown")
DRAWS = 8  # tries at a form whose format states the value


@dataclass(frozen=True)
class Fact(Written):
    """One field of a record as a sentence. ``value`` gives its canonical string; ``kind``,
    ``labels`` (names a document gives the field) and ``unit`` let ``worldgen.surface`` write it
    in many more forms than the hand-written ``templates``."""

    key: str
    templates: tuple[str, ...]
    value: Callable[[Row], str]
    withhold_p: float = 0.2
    kind: ValueKind = "text"
    labels: tuple[str, ...] = ()
    unit: str = ""

    @cached_property
    def forms(self) -> tuple[Form, ...]:
        labels = self.labels or (self.key.replace("_", " "),)  # a field's name, at least
        return fact_forms(self.templates, labels, self.kind, self.unit)

    def choices(self, families: Families | None, heldout: bool) -> tuple[int, ...]:
        found = super().choices(families, heldout)
        if not found:  # a fact must be writable in every rendering; a distractor need not be
            kind = "held-out" if heldout else "in-family"
            raise ValueError(f"fact {self.key!r} has no {kind} form")
        return found

    def draw(
        self, row: Row, rng: np.random.Generator, families: Families | None, heldout: bool
    ) -> int:
        """A form for this record: drawn again while its format cannot state the value
        (``$1.2 million`` for ``$1,234,567.89``), at worst the hand-written plain sentence."""
        choices = self.choices(families, heldout)
        value = self.value(row)
        for _ in range(DRAWS):
            form = choices[int(rng.integers(len(choices)))]
            if writes(self.forms[form], value, self.unit):
                return form
        plain = [i for i in choices if self.forms[i].fmt == PLAIN]
        return plain[0] if plain else form

    def sentence(self, row: Row, form: int) -> str:
        return write(self.forms[form], self.value(row), self.unit)


@dataclass(frozen=True)
class Joint:
    """Facts that a document may state several to a sentence. A *listing* template takes
    ``{roles}`` (``{Roles}`` capitalised) and ``{values}``, each a list (``a, b and c``) in the
    plan's order, each value written as ``value``. A *keyed* template names every role's value
    by its fact key, in the sentence's own order (``BP {sbp}/{dbp} mmHg.``): the shorthand
    people write, drawn only when the sentence states every role."""

    roles: Mapping[str, str]  # fact key -> how the sentence names it
    templates: tuple[str, ...]
    value: str = "{v}"
    p: float = 0.5  # chance that a group of stated facts of the joint shares a sentence
    size: int = 2  # the most facts one sentence states

    def words(self) -> list[str]:
        """Every template with its blanks left empty: the words the joint writes."""
        blank = dict.fromkeys(("roles", "Roles", "values", *self.roles), " ")
        return [t.format(**blank) for t in self.templates] + list(self.roles.values())

    @cached_property
    def _keyed(self) -> frozenset[int]:
        return frozenset(
            i for i, t in enumerate(self.templates) if any("{" + k + "}" in t for k in self.roles)
        )

    @cached_property
    def _listing(self) -> list[int]:  # what a group without every role may draw
        return [i for i in range(len(self.templates)) if i not in self._keyed]

    def keyed(self, template: int) -> bool:
        return template in self._keyed

    def group_up(self, plan: list[tuple[str, int]], rng: np.random.Generator) -> None:
        """Merge stated members of the joint, ``size`` at a time in sentence order, in place."""
        members = [i for i, (key, _) in enumerate(plan) if key in self.roles]
        merged: list[int] = []
        for start in range(0, len(members), self.size):
            group = members[start : start + self.size]
            if len(group) > 1 and rng.random() < self.p:
                complete = len(group) == len(self.roles)
                allowed = range(len(self.templates)) if complete else self._listing
                if not allowed:
                    continue
                keys = JOIN.join(plan[i][0] for i in group)
                plan[group[0]] = (keys, allowed[int(rng.integers(len(allowed)))])
                merged += group[1:]
        for i in reversed(merged):  # ascending: each group follows the previous one
            del plan[i]

    def sentence(self, facts: Mapping[str, Fact], keys: str, row: Row, template: int) -> str:
        members = keys.split(JOIN)
        values = [self.value.format(v=facts[k].value(row)) for k in members]
        if self.keyed(template):
            return self.templates[template].format(**dict(zip(members, values, strict=True)))
        roles = listing([self.roles[k] for k in members])
        capital = roles[:1].upper() + roles[1:]
        return self.templates[template].format(roles=roles, Roles=capital, values=listing(values))


def listing(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


Values = Mapping[str, str]  # fact key -> its value as the document states it
Program = str | Callable[[Values, Row], str]


@dataclass(frozen=True)
class Path:
    """Stated facts that make a question answerable, the kind of reasoning that takes, and
    optionally the derivation: a ``str.format`` template over stated fact keys, or a function
    of the stated values and the record (when the rule itself depends on the case)."""

    needs: tuple[str, ...]
    kind: Kind
    program: Program | None = None

    def derivation(self, values: Values, row: Row) -> str:
        if self.program is None:
            return ""
        if isinstance(self.program, str):
            return self.program.format_map(values)
        return self.program(values, row)

    def unstated_derivation(self, values: Values, row: Row) -> str:
        """The derivation with ``unstated`` for each missing fact, or "" when a missing fact
        would steer the rule rather than appear in it (a branch on a withheld diagnosis would
        leak what the document does not say)."""
        missing = [key for key in self.needs if key not in values]
        marks = {key: f"{UNSTATED}_{i}_" for i, key in enumerate(missing)}
        try:
            text = self.derivation(_Filled(values, marks), row)
        except (KeyError, ValueError, TypeError, ArithmeticError):
            return ""
        if not all(mark in text for mark in marks.values()):
            return ""
        for mark in marks.values():
            text = text.replace(mark, UNSTATED)
        return text


class _Filled(dict[str, str]):
    """Stated values, with a marker for each missing one."""

    def __init__(self, values: Values, marks: Mapping[str, str]) -> None:
        super().__init__(values)
        self.marks = marks

    def __missing__(self, key: str) -> str:
        return self.marks[key]


Reveal = Callable[[Values], bool]  # do these stated values (may) decide the answer?


@dataclass(frozen=True)
class Resolution:
    """How a document answers a question: its kind (None when the stated facts decide it by a
    route no path writes: it is not asked) and its derivation."""

    kind: Kind | None
    derivation: str


@dataclass(frozen=True)
class Question:
    """How to ask, the true answer, the paths that derive it and ``revealed_by``: tests of the
    stated values that may decide the answer by a route the paths do not write (an award above
    zero means the defendant was found liable). A question so decided is never asked as
    ``unknown``: the world model does not call unknown what the document gives away."""

    key: str
    templates: tuple[str, ...]
    answer: Callable[[Row], str]
    paths: tuple[Path, ...]
    revealed_by: tuple[Reveal, ...] = ()

    def phrasings(self, families: Families | None, heldout: bool) -> tuple[str, ...]:
        """How a rendering may ask: without families, the hand-written questions."""
        if families is None:
            return self.templates
        return _phrasings(self.templates, families.questions, heldout)

    def path_given(self, stated: frozenset[str]) -> Path | None:
        """The first path whose facts are all stated; None when no path is complete."""
        for path in self.paths:
            if stated.issuperset(path.needs):
                return path
        return None

    def resolve(self, row: Row, values: Values) -> Resolution:
        """Kind and derivation given the stated ``values``. A complete path answers; else a
        rule its stated values decide despite a gap (``no and unstated``) answers; else the
        answer is unknown, with the nearest path's derivation and its gaps marked ``unstated``
        (just ``unstated`` when no path can be written without a leak)."""
        stated = frozenset(values)
        path = self.path_given(stated)
        if path is not None:
            return Resolution(path.kind, path.derivation(values, row))
        # nearest first: the path a reader would have tried, lacking the fewest facts (a
        # stated answer's copy, lacking its one fact, would say nothing but ``unstated``)
        rules = [p for p in self.paths if p.kind != "lookup"]
        nearest = sorted(rules, key=lambda p: len(set(p.needs) - stated))
        written = [(p, p.unstated_derivation(values, row)) for p in nearest]
        for path, text in written:
            if text and decides(text):
                return Resolution(path.kind, text)
        if any(reveals(values) for reveals in self.revealed_by):
            return Resolution(None, "")
        text = next((t for _, t in written if t), "")
        # a rule question always starts its answer the same way; the gap is named at once
        if not text and any(p.program is not None for p in self.paths):
            text = UNSTATED
        return Resolution(UNKNOWN, text)

    def expected(self, row: Row, resolution: Resolution) -> str:
        return UNKNOWN if resolution.kind == UNKNOWN else self.answer(row)


@lru_cache(maxsize=1 << 16)
def decides(derivation: str) -> bool:
    """Whether a derivation with gaps still computes (Kleene: ``no and unstated`` is ``no``).
    Cached: the gate re-resolves every question, and gapped rules repeat across records."""
    if UNSTATED in derivation and not may_decide_despite_gaps(derivation):
        return False
    try:
        compute(derivation)
    except CalcError:
        return False
    return True


def shown(key: str, *decisive: str) -> Reveal:
    """``revealed_by``: ``key`` is stated (with one of the ``decisive`` values, when given)."""
    return lambda values: key in values and (not decisive or values[key] in decisive)


def unique_to_one(table: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Values listed under exactly one key of an allowed-values table: stating such a value
    states the key (retinopathy only under type 2 diabetes; truth only as a defence to
    defamation)."""
    values = {v for listed in table.values() for v in listed}
    return tuple(v for v in sorted(values) if sum(v in listed for listed in table.values()) == 1)


def shown_where(key: str, test: Callable[[str], bool]) -> Reveal:
    """``revealed_by``: ``key`` is stated and its value passes ``test``."""
    return lambda values: key in values and test(values[key])


@dataclass(frozen=True)
class Renderer:
    """A domain's facts and questions, and how many questions of each kind to ask per record."""

    facts: tuple[Fact, ...]
    questions: tuple[Question, ...]
    per_kind: Mapping[Kind, int] = field(
        default_factory=lambda: {"lookup": 1, "derived": 1, "multistep": 2, "unknown": 1}
    )
    joints: tuple[Joint, ...] = ()
    distractors: tuple[Distractor, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "_facts", {f.key: f for f in self.facts})
        object.__setattr__(self, "_questions", {q.key: q for q in self.questions})
        joint_of = {key: j for j in self.joints for key in j.roles}
        object.__setattr__(self, "_joint_of", joint_of)
        object.__setattr__(self, "_distractors", {d.entry: d for d in self.distractors})
        for d in self.distractors:
            if d.of not in self._facts or self.fact(d.of).kind != d.kind:  # type: ignore[attr-defined]
                raise ValueError(f"distractor {d.name!r} must resemble a fact of kind {d.kind}")

    def fact(self, key: str) -> Fact:
        return self._facts[key]  # type: ignore[attr-defined]

    def distractor(self, entry: str) -> Distractor:
        """The distractor a plan entry (``~name``) names."""
        return self._distractors[entry]  # type: ignore[attr-defined]

    def written_by(self, entry: str) -> Fact | Distractor:
        """The fact or distractor a plan entry of one sentence names (not a shared one)."""
        return self.distractor(entry) if entry.startswith(DISTRACT) else self.fact(entry)

    def question(self, key: str) -> Question:
        return self._questions[key]  # type: ignore[attr-defined]

    def plan(
        self,
        row: Row,
        rng: np.random.Generator,
        families: Families | None = None,
        heldout: bool = False,
    ) -> list[tuple[str, int]]:
        """Which facts to state, in which form, in which order, and perhaps a distractor;
        ``heldout``: only forms of the held-out families (and no shared sentences, which are
        in-family)."""
        stated = []
        for f in self.facts:
            if rng.random() >= f.withhold_p:
                stated.append((f.key, f.draw(row, rng, families, heldout)))
        order = rng.permutation(len(stated))
        plan = [stated[i] for i in order]
        if not heldout:
            for joint in self.joints:
                joint.group_up(plan, rng)
        place(plan, self.distractors, row, rng, families, heldout)
        return plan

    def sentence(self, row: Row, entry: str, template: int) -> str:
        if JOIN not in entry:
            return self.written_by(entry).sentence(row, template)
        joint: Joint = self._joint_of[entry.split(JOIN)[0]]  # type: ignore[attr-defined]
        return joint.sentence(self._facts, entry, row, template)  # type: ignore[attr-defined]

    def document(self, row: Row, plan: list[tuple[str, int]]) -> str:
        return " ".join(self.sentence(row, entry, t) for entry, t in plan)

    def stated_values(self, row: Row, stated: frozenset[str]) -> dict[str, str]:
        return {key: self.fact(key).value(row) for key in stated}

    def ask(
        self,
        row: Row,
        stated: frozenset[str],
        rng: np.random.Generator,
        families: Families | None = None,
        heldout: bool = False,
    ) -> list[dict[str, str]]:
        values = self.stated_values(row, stated)
        by_kind: dict[Kind, list[tuple[Question, Resolution]]] = {k: [] for k in KINDS}
        for q in self.questions:
            resolution = q.resolve(row, values)
            if resolution.kind is not None:
                by_kind[resolution.kind].append((q, resolution))
        out = []
        for kind, count in self.per_kind.items():
            pool = by_kind[kind]
            for i in rng.permutation(len(pool))[:count]:
                q, resolution = pool[i]
                phrasings = q.phrasings(families, heldout)
                text = phrasings[int(rng.integers(len(phrasings)))]
                out.append(
                    {
                        "kind": kind,
                        "key": q.key,
                        "question": text,
                        "answer": q.expected(row, resolution),
                        "derivation": resolution.derivation,
                    }
                )
        return out


def paths(*spec: tuple[Any, ...]) -> tuple[Path, ...]:
    """``((needs, kind[, program]), ...)`` as Paths: the compact way domains declare how to
    answer."""
    for _needs, kind, *_ in spec:
        if kind not in KINDS:
            raise ValueError(f"unknown question kind {kind!r}; one of {KINDS}")
    return tuple(Path(tuple(needs), cast(Kind, kind), *program) for needs, kind, *program in spec)


def lookups(
    asked: tuple[str, ...],
    items: Iterable[tuple[str, str, Callable[[Row], str]]],
    revealed: Mapping[str, tuple[Reveal, ...]] | None = None,
) -> tuple[Question, ...]:
    """One lookup question per stated fact; ``asked`` templates take ``{label}``; ``revealed``
    gives a fact's ``revealed_by``."""
    return tuple(
        Question(
            f"lookup_{key}",
            tuple(t.format(label=label) for t in asked),
            answer,
            paths(((key,), "lookup")),
            (revealed or {}).get(key, ()),
        )
        for key, label, answer in items
    )


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def stated_field(name: str) -> Callable[[Row], str]:
    """A fact's value as written: the record's field as a string."""

    def value(row: Row) -> str:
        return str(row[name])

    return value


def flag_field(name: str) -> Callable[[Row], str]:
    def value(row: Row) -> str:
        return yes_no(bool(row[name]))

    return value


def money_field(name: str) -> Callable[[Row], str]:
    def value(row: Row) -> str:
        return money(int(row[name]))

    return value


@lru_cache(maxsize=4096)
def _phrasings(templates: tuple[str, ...], held: frozenset[int], heldout: bool) -> tuple[str, ...]:
    return tuple(text for text, frame in question_forms(templates) if (frame in held) == heldout)


def render_block(
    renderer: Renderer,
    rows: list[dict[str, Any]],
    rng: np.random.Generator,
    families: Families | None = None,
    heldout: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Documents and QA pairs for one block of records (rows carry labels, not codes), in the
    in-family forms of ``families`` or (``heldout``) only the held-out ones."""
    docs, qas = [], []
    for row in rows:
        plan = renderer.plan(row, rng, families, heldout)
        stated = stated_keys(plan)
        docs.append(
            {
                "record_id": row["record_id"],
                "plan": encode_plan(plan),
                "document": renderer.document(row, plan),
            }
        )
        for i, qa in enumerate(renderer.ask(row, stated, rng, families, heldout)):
            qas.append({"qa_id": row["record_id"] * 16 + i, "record_id": row["record_id"], **qa})
    return docs, qas
