"""Surface forms: the many ways a document states a fact or asks a question, in families.

A fact's *forms* are its hand-written sentences plus a grammar's: a sentence frame (prose, a
``Field: value`` line, shorthand, a table row, ...) around one of the fact's names, with the
value in one of its kind's formats (``values``: ``$1,200,000.00``, ``USD 1.2 million``,
``26 Dec 2021``, ``9.1%``, a unit stated or implied). A question's forms are its hand-written
questions inside a question frame (``According to the document, ...``).

Families make phrasing a thing a benchmark can hold out: every frame and every value format is
one family, and a seeded, recorded rule (``held_out``) sets some of them aside. Training and
validation documents use only forms with no held-out part (*in-family*); the held-out-phrasing
test uses only forms with one (an unseen frame, or a value format never seen in training), over
the same held-out entities. The hand-written sentences and the formats records already use are
never held out, so in-family documents still read as they always did, and more.

Forms are listed in a fixed order that does not depend on the seed (the hand-written sentences
in the record's own format first), so a document's plan, which names forms by index, re-renders
without knowing which families were held out.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from worldgen.values import Format, date_formats, money_formats

ValueKind = Literal["money", "date", "number", "text"]
PLAIN = "plain"  # the format records, answers and derivations use: never held out

# Frames around a value a document states with a unit or in a format (money, dates, measures).
VALUE_FRAMES: tuple[str, ...] = (
    "{Label} was {v}.",
    "The {label} was {v}.",
    "{Label}: {v}.",
    "{Label} {v}.",
    "{Label} is {v}.",
    "{Label} = {v}.",
    "{Label} of {v} was recorded.",
    "{Label} stood at {v}.",
    "{Label} reported as {v}.",
    "{Label} noted at {v}.",
    "Recorded {label}: {v}.",
    "{v} ({label}).",
    "| {Label} | {v} |",
    "{Label} came in at {v}.",
    "The record gives {label} as {v}.",
    "Documented {label}, {v}.",
    "{Label} amounted to {v}.",
    "We note {label} of {v}.",
)
# Frames around a category or a yes/no a document states (no unit, no number format).
TEXT_FRAMES: tuple[str, ...] = (
    "{Label}: {v}.",
    "{Label} - {v}.",
    "| {Label} | {v} |",
    "{Label} = {v}.",
    "{Label}, {v}.",
    "{Label} recorded as {v}.",
    "{Label} is noted as {v}.",
    "The file lists {label} as {v}.",
    "{Label} {v}.",
    "As to {label}: {v}.",
)
# More ways to join a label and a category: a reader that saw a label joined to its value only
# by the few marks above missed it joined any other way ("Claim negligence.", "Claim recorded as
# negligence." read as unstated on held-out phrasing). Its own family list, drawn after the
# others, so the families the lists above hold out stay as they were.
TEXT_LINKS: tuple[str, ...] = (
    "{Label} noted as {v}.",
    "{Label} listed as {v}.",
    "{Label} given as {v}.",
    "{Label} stated as {v}.",
    "{Label} entered as {v}.",
    "{Label} documented as {v}.",
    "{Label} reads {v}.",
    "{Label} was {v}.",
    "{Label}; {v}.",
    "{Label} / {v}.",
    "On file, {label}: {v}.",
    "{Label} (per the file) {v}.",
)
QUESTION_FRAMES: tuple[str, ...] = (
    "{Q}",
    "According to the document, {q}",
    "Based on the text, {q}",
    "Question: {Q}",
    "From the record: {Q}",
    "Please answer from the document. {Q}",
    "{Q} Answer from the document only.",
    "Reading the document, {q}",
)
HELD_OUT_SHARE = 0.25  # of the grammar's frames, and of each kind's optional formats


@dataclass(frozen=True)
class Form:
    """One way to write a fact: a sentence with ``{v}``, the value's format, its families."""

    template: str
    fmt: str
    frame: str  # "hand:0", "value:3", "text:5": the sentence frame's family
    kind: ValueKind

    def held_out_by(self, families: Families) -> bool:
        return self.frame in families.frames or f"{self.kind}:{self.fmt}" in families.formats


@dataclass(frozen=True)
class Families:
    """The held-out families of one seed: sentence frames, value formats, question frames."""

    seed: int
    frames: frozenset[str]
    formats: frozenset[str]
    questions: frozenset[int]

    def as_dict(self) -> dict[str, object]:
        return {
            "seed": self.seed,
            "rule": f"a seeded share of {HELD_OUT_SHARE} of each family list",
            "frames": sorted(self.frames),
            "formats": sorted(self.formats),
            "question_frames": sorted(self.questions),
        }


@lru_cache(maxsize=256)
def value_formats(kind: ValueKind, unit: str = "") -> dict[str, Format]:
    """A kind's formats, by name; ``plain`` first. A measure states its unit or implies it."""
    if kind == "money":
        return money_formats()
    if kind == "date":
        return {PLAIN: lambda c: c, **{k: f for k, f in date_formats().items() if k != "iso"}}
    if kind == "number":
        glue = "" if unit == "%" else " "
        stated: dict[str, Format] = {PLAIN: lambda c: c}
        if unit:
            stated["unit"] = lambda c: f"{c}{glue}{unit}"
        return stated
    return {PLAIN: lambda c: c}


def _optional(kind: ValueKind) -> list[str]:
    return [name for name in value_formats(kind, "x") if name != PLAIN]


@lru_cache(maxsize=64)
def held_out(seed: int) -> Families:
    """The seeded rule: a share of the grammar's frames, of each kind's formats and of the
    question frames is held out (at least one of each list, never all of it)."""
    rng = np.random.default_rng([seed, 0x5F0F])

    def pick(items: list[str]) -> list[str]:
        k = min(len(items) - 1, max(1, round(HELD_OUT_SHARE * len(items))))
        return [items[i] for i in sorted(rng.permutation(len(items))[:k])]

    frames = pick([f"value:{i}" for i in range(len(VALUE_FRAMES))])
    frames += pick([f"text:{i}" for i in range(len(TEXT_FRAMES))])
    kinds: tuple[ValueKind, ...] = ("money", "date", "number")
    formats = [f"{kind}:{name}" for kind in kinds for name in pick(_optional(kind))]
    questions = [int(q) for q in pick([str(i) for i in range(1, len(QUESTION_FRAMES))])]
    frames += pick([f"link:{i}" for i in range(len(TEXT_LINKS))])
    return Families(seed, frozenset(frames), frozenset(formats), frozenset(questions))


def fact_forms(
    hand: tuple[str, ...], labels: tuple[str, ...], kind: ValueKind, unit: str
) -> tuple[Form, ...]:
    """Every form of a fact, in a fixed order: the hand-written sentences in the plain format
    first (a plan index from before the grammar still names them), then the rest."""
    formats = value_formats(kind, unit)
    hand_formats = [PLAIN] + [f for f in formats if f != PLAIN and kind in ("money", "date")]
    out = [Form(t, PLAIN, f"hand:{i}", kind) for i, t in enumerate(hand)]
    out += [Form(t, fmt, f"hand:{i}", kind) for fmt in hand_formats[1:] for i, t in enumerate(hand)]
    text = [("text", TEXT_FRAMES), ("link", TEXT_LINKS)]
    for family, frames in text if kind == "text" else [("value", VALUE_FRAMES)]:
        for i, frame in enumerate(frames):
            for label in labels:
                sentence = frame.format(Label=label[:1].upper() + label[1:], label=label, v="{v}")
                out += [Form(sentence, fmt, f"{family}:{i}", kind) for fmt in formats]
    return tuple(out)


def writes(form: Form, canonical: str, unit: str) -> bool:
    """Whether ``form``'s format states ``canonical`` exactly, and unlike the plain format
    (``$1.2 million`` cannot state ``1234567.89``; ``$5.00`` grouped is just ``$5.00``)."""
    return value_formats(form.kind, unit)[form.fmt](canonical) is not None


def write(form: Form, canonical: str, unit: str) -> str:
    """The sentence of ``form`` stating ``canonical`` (in the plain format where its own
    cannot: a plan draws such a form only by mistake, and the render checks would say so)."""
    formats = value_formats(form.kind, unit)
    shown = formats[form.fmt](canonical)
    return form.template.format(v=formats[PLAIN](canonical) if shown is None else shown)


PROBES: dict[ValueKind, tuple[str, ...]] = {
    "money": ("5.00", "-5.00", "1200000.00", "1234567.89", "-350.00", "350000.00"),
    "date": ("2021-12-26", "2004-03-07"),
    "number": ("7.5", "150"),
    "text": ("probe",),
}


def probe_sentences(form: Form, unit: str) -> set[str]:
    """What ``form`` writes for a few values of its kind: two forms that write the same text
    are the same form to a reader, whatever their families."""
    return {write(form, v, unit) for v in PROBES[form.kind] if writes(form, v, unit)}


class Written:
    """What a fact and a distractor share: hand-written ``templates`` (with ``{v}``), the
    ``forms`` built from them, and which of those a rendering may draw."""

    templates: tuple[str, ...]
    unit: str

    @property
    def forms(self) -> tuple[Form, ...]:
        raise NotImplementedError

    def choices(self, families: Families | None, heldout: bool) -> tuple[int, ...]:
        """Without families the hand-written forms; with them ``family_choices``, once per
        (families, heldout): hashing the owner would cost more than the lookup."""
        if families is None:
            return tuple(range(len(self.templates)))
        cache = self.__dict__.setdefault("_choices", {})
        found: tuple[int, ...] | None = cache.get((families, heldout))
        if found is None:
            found = cache[families, heldout] = family_choices(
                self.forms, self.unit, families, heldout
            )
        return found


def family_choices(
    forms: tuple[Form, ...], unit: str, families: Families, heldout: bool
) -> tuple[int, ...]:
    """In-family forms, or held-out ones that write no sentence an in-family form writes (a
    held-out frame can meet a hand-written sentence: "{Label} {v}." and "SBP {v} mmHg.")."""
    inside: set[str] = set()
    for f in forms:
        if not f.held_out_by(families):
            inside |= probe_sentences(f, unit)
    return tuple(
        i
        for i, f in enumerate(forms)
        if f.held_out_by(families) == heldout
        and (not heldout or not probe_sentences(f, unit) & inside)
    )


def question_forms(templates: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """A question's phrasings with their frame: each hand-written question in each frame."""
    out = []
    for i, frame in enumerate(QUESTION_FRAMES):
        for q in templates:
            out.append((frame.format(Q=q, q=q[:1].lower() + q[1:]), i))
    return tuple(out)
