"""The questions a model was trained to answer, and about which documents: a safety net.

A question the model never learned to read, about a document of another kind, is answered by
some learned path anyway, often with high confidence ("What was the company's revenue?" about a
clinic note read ``no`` at 0.96). The guide, written beside the weights at training, holds each
domain's question forms and the words that mark its documents (words of its fact sentences no
other domain writes). A question is answered only when it is close to a form of a domain whose
marks the document carries; anything else reads ``unknown`` with the reason. Closeness is
measured from the question's first clause that names what is asked, so a lead-in no training
question wrote ("From the record:") does not hide a question the model knows.

It also holds what each question's answers look like in training. A question answered with
labels (a cause of action, a sector, yes or no) keeps every label training gave: a label
outside them is another question's answer read by mistake ("Texas", the governing law, as the
cause of action, at 0.999). A question answered with figures (an amount, a date, a count)
answers a figure, and a negative one only if training had one: "type 2 diabetes" as the BMI and
-70000.00 as the unawarded part of a claim were both given at 0.97 or more; a date where
training's answers are numbers, or a number where they are dates, only as training had them
(the visit's date as the age of a "58-year-old woman", at 0.98). A derivation that reads one
value as two of a rule's arguments reads ``unknown`` where training's derivations of that
question never did: ``age(1958-06-02, 1958-06-02)``, the birth date as the visit's too, gave an
age of 0 and an eGFR at 0.97 and more on hand-written notes. Each reads ``unknown`` with the
reason. So does one that puts a figure where training's derivations of that question never put
one of its shape (``places``): a number with a decimal as the systolic pressure of
``26.2 >= 130 or 70 >= 80`` (the BMI read as the pressure, at 0.97), a whole number in a sum of
amounts in cents (``58175122.60 + 4 + ...``, a count read as an asset). So does one that compares
with a literal training's never compared with (``constants``): "did the plaintiff win?" is
``'not liable' == 'liable'`` in training, and ``'not liable' == 'not liable'``, the judgment copied
as the rule's constant, read ``yes``. And one that computes a number with decimals training's
derivations of that question never had (``decimals``): an interest coverage written
``round(..., 3)`` or ``round(..., 4)``, where training always rounds to 2, gave 2.515 and 11.4433
at 0.94 and more.

And it holds the word pairs of the training text, so that an answer can say whether the risk
guarantee reaches it: a question (with its document) is as novel as the share of its word pairs
training never wrote (``novelty``). The guarantee is certified on calibration questions written
as training writes; a question more novel than every calibration question is outside what the
certificate measured, and is answered without the guarantee, saying so (``models.abstain``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Any

from worldgen.render import UNKNOWN

GUIDE = "guide.json"
CLOSE = 0.75  # word-set overlap (Jaccard) with a trained question form that counts as asking it
# a word in the forms of fewer than this share of a domain's question keys says which one is
# asked; the rest ("according to the document", "patient") are every question's
ASKING_SHARE = 0.5
MEMO_SIZE = 4096  # documents, and (domains, question) pairs, the guide remembers
LABELS_AT_MOST = 64  # a question with more distinct answers than this is not asked for a label
NUMBER = re.compile(r"-?\d+(\.\d+)?")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
FIGURE = re.compile(f"{NUMBER.pattern}|{DATE.pattern}")  # a canonical number, amount or date
CALL = re.compile(r"(\w+)\(([^(),]+), ([^(),]+)\)")  # a rule of two plain arguments: age(a, b)
UNSTATED = "unstated"  # a derivation's mark of a value the document does not state
ARITHMETIC = "arithmetic"  # a figure a derivation uses twice outside a rule's two arguments
_OPERAND = re.compile(r"(?<![\w.])(?:\d{4}-\d{2}-\d{2}|\d+(?:\.\d+)?)(?![\w.])")
# a derivation's pieces: a date, a number, a rule's name with its bracket, an operator, a label
_TOKEN = re.compile(r"\d{4}-\d{2}-\d{2}|\d+(?:\.\d+)?|\w+\(?|\*\*|[<>=!]=|'[^']*'|\S")
START = "^"  # what stands before a derivation's first piece
# a comparison's constant side: ``== 'liable'`` (a literal reads as its stripped text)
_CONSTANT = re.compile(r"(==|!=)\s*'([^']*)'")
_WORD = re.compile(r"[^\W\d_]+")
_SENTENCE_END = re.compile(r"(?<=[.!])\s+")
_CLAUSE_END = re.compile(r"(?<=[.!?:;,])\s+")
# words, numbers and marks; a number is any number ("#"): values vary, their wording does not
_PIECE = re.compile(r"[^\W\d_]+|\d+|[^\w\s]")


def words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def word_pairs(text: str) -> frozenset[str]:
    """The text's adjacent pairs of words, numbers (as ``#``) and marks: "BP 150/88." has
    "bp #", "# /", "/ #", "# .". Pairs, not words: held-out phrasing reuses training's words
    in new orders ("recorded as"): at the default size, seed 0, every one of 13,280 held-out test
    questions has a pair training never wrote (at least a tenth of its pairs), 17 of 13,286
    in-family ones do (at most 1.5%)."""
    pieces = ["#" if p[0].isdigit() else p for p in _PIECE.findall(text.lower())]
    return frozenset(f"{a} {b}" for a, b in pairwise(pieces))


@dataclass(frozen=True)
class Guide:
    questions: dict[str, list[str]]  # domain -> question forms
    marks: dict[str, list[str]]  # domain -> words only its documents write
    keys: dict[str, list[str]] = field(default_factory=dict)  # domain -> each form's question key
    labels: dict[str, list[str]] = field(default_factory=dict)  # key -> the labels it answers
    # key -> whether training answered it with a negative figure, for keys answered in figures
    figures: dict[str, bool] = field(default_factory=dict)
    # key -> whether its figures are dates, for keys training answered only in dates or in none
    dated: dict[str, bool] = field(default_factory=dict)
    pairs: list[str] = field(default_factory=list)  # word pairs of the training text, sorted
    # key -> the rules training's derivations of it called with one stated value twice, for
    # keys training answered with derivations
    twice: dict[str, list[str]] = field(default_factory=dict)
    # key -> the places training's derivations of it put figures in ("min( 2dp": an amount in
    # cents right after "min("), for keys training answered with derivations
    places: dict[str, list[str]] = field(default_factory=dict)
    # key -> the literals training's derivations of it compared with ("== 'liable'"), for keys
    # training answered with derivations (none for most)
    constants: dict[str, list[str]] = field(default_factory=dict)
    # key -> the decimals of the numbers training's derivations of it computed ("2": a ratio
    # rounded to cents), for keys training answered with derived numbers
    decimals: dict[str, list[int]] = field(default_factory=dict)
    _memo: dict[str, dict[Any, Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def load(cls, model_dir: str | Path) -> Guide | None:
        path = Path(model_dir) / GUIDE
        if not path.exists():  # a model trained before guides: answered as before
            return None
        data = json.loads(path.read_text())  # guides before labels have neither keys nor labels
        shapes = {k: data.get(k, {}) for k in ("keys", "labels", "figures", "dated")}
        later = {k: data.get(k, {}) for k in ("twice", "places", "constants", "decimals")}
        return cls(data["questions"], data["marks"], **shapes, pairs=data.get("pairs", []), **later)

    def save(self, model_dir: Path) -> None:
        data = {
            "questions": self.questions,
            "marks": self.marks,
            "keys": self.keys,
            "labels": self.labels,
            "figures": self.figures,
            "dated": self.dated,
            "pairs": self.pairs,
            "twice": self.twice,
            "places": self.places,
            "constants": self.constants,
            "decimals": self.decimals,
        }
        (model_dir / GUIDE).write_text(json.dumps(data, indent=2, sort_keys=True))

    @cached_property
    def _forms(self) -> dict[str, list[frozenset[str]]]:  # each form's words, once
        return {d: [words(form) for form in forms] for d, forms in self.questions.items()}

    @cached_property
    def _marks(self) -> dict[str, frozenset[str]]:
        return {d: frozenset(marks) for d, marks in self.marks.items()}

    @cached_property
    def _pairs(self) -> frozenset[str]:
        return frozenset(self.pairs)

    def novelty(self, document: str, question: str) -> float | None:
        """The share of the document's and question's word pairs that training never wrote
        (None: a guide written before it kept them cannot tell)."""
        if not self.pairs:
            return None
        written = self._remembered("pairs", document, word_pairs) | word_pairs(question)
        return len(written - self._pairs) / max(1, len(written))

    def kinds(self, document: str) -> tuple[str, ...]:
        """The domains whose marks ``document`` carries."""
        kinds: tuple[str, ...] = self._remembered("kinds", document, self._kinds)
        return kinds

    def why_not(self, document: str, question: str) -> str | None:
        """Why ``question`` about ``document`` is not one the model was trained to answer."""
        kinds = self.kinds(document)
        if not kinds:
            return "the document is none of the kinds the model was trained on"
        if self._match(kinds, question)[0]:
            return None
        return (
            "the question is not one the model was trained to answer about a "
            f"{' or '.join(kinds)} document; it answers only what it was trained to ask"
        )

    def asked_key(self, document: str, question: str) -> str | None:
        """The key of the trained form closest to ``question`` among the document's domains
        (None: no form is close, or the guide has no keys)."""
        return self._match(self.kinds(document), question)[1]

    def question_sentence_last(self, document: str, question: str) -> str:
        """A request written without a question mark, with its sentences reordered so the one
        closest to a trained question form comes last: "Report the mean glucose. Answer from
        the document only." reads as "Answer from the document only. Report the mean glucose."
        (``tokenizer.question_last`` does this by the question mark where there is one). The
        answer is cued right after the question, as in every training example; a model read
        the request followed by an instruction as a question about the instruction (held-out
        phrasing: 0.43 right on such requests, 0.84 on the rest)."""
        if "?" in question:
            return question
        sentences = _SENTENCE_END.split(question.strip())
        if len(sentences) < 2:
            return question
        forms = [form for d in self.kinds(document) for form in self._forms.get(d, [])]
        closeness = [max((_overlap(words(s), f) for f in forms), default=0.0) for s in sentences]
        best = max(range(len(sentences)), key=lambda i: (closeness[i], i))
        return " ".join([*sentences[:best], *sentences[best + 1 :], sentences[best]])

    def _kinds(self, document: str) -> tuple[str, ...]:
        doc = words(document)
        return tuple(d for d, marks in self._marks.items() if doc & marks)

    @cached_property
    def _asking(self) -> dict[str, frozenset[str]]:
        """Per domain, the words that say which question is asked (``ASKING_SHARE``)."""
        out = {}
        for domain, keys in self.keys.items():
            # a guide keys its first len(keys) forms (as ``_walk`` reads them)
            by_key = _per_key(keys, self.questions[domain][: len(keys)], words)
            count = Counter(w for asked in by_key.values() for w in asked)
            out[domain] = frozenset(w for w, n in count.items() if n < ASKING_SHARE * len(by_key))
        return out

    def core(self, kinds: tuple[str, ...], question: str) -> str:
        """``question`` from its first clause that names what is asked: without a lead-in ("From
        the record:", "Reading the document,") whose words are every question's or none's. A
        lead-in training never wrote took a short question's word overlap below ``CLOSE``, and
        the question read as one the model was never trained on (held-out phrasing, seeds 1
        and 2: a third of such questions) where the model read it right. The question as
        written where no clause names what is asked."""
        asking = frozenset().union(*(self._asking.get(d, frozenset()) for d in kinds))
        clauses = _CLAUSE_END.split(question.strip())
        named = [i for i, clause in enumerate(clauses) if words(clause) & asking]
        return " ".join(clauses[named[0] :]) if named else question

    def _match(self, kinds: tuple[str, ...], question: str) -> tuple[bool, str | None]:
        return self._remembered("match", (kinds, question), lambda k: self._read(*k))

    def _read(self, kinds: tuple[str, ...], question: str) -> tuple[bool, str | None]:
        """``_walk`` of the question as written, else of its ``core``."""
        found = self._walk(kinds, question)
        if found[0]:
            return found
        core = self.core(kinds, question)
        return found if core == question else self._walk(kinds, core)

    def _walk(self, kinds: tuple[str, ...], question: str) -> tuple[bool, str | None]:
        """One walk over the domains' forms -> (is a form close to ``question``, the key of
        the closest keyed form: the first of the highest overlap at or above CLOSE)."""
        asked, best, key, close = words(question), CLOSE, None, False
        for domain in kinds:
            keys = self.keys.get(domain, [])
            for i, known in enumerate(self._forms[domain]):
                shared, either = len(asked & known), len(asked | known)
                close = close or shared >= CLOSE * either
                overlap = shared / either
                if i < len(keys) and overlap >= best and (key is None or overlap > best):
                    best, key = overlap, keys[i]
        return close, key

    def _remembered(self, table: str, arg: Any, compute: Callable[[Any], Any]) -> Any:
        """``compute(arg)``, kept: a batch asks several questions of one document, and the
        same question forms of many documents (the memo is emptied when it grows large)."""
        memo = self._memo.setdefault(table, {})
        value = memo.get(arg, memo)  # the memo itself marks "not there" (never a value)
        if value is memo:  # read once, so another thread emptying it cannot lose the value
            value = compute(arg)
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            memo[arg] = value
        return value

    def why_not_answer(
        self, document: str, question: str, answer: str, derivation: str = ""
    ) -> str | None:
        """Why ``answer`` cannot answer ``question``: a label the question never had, a word
        where it asks a figure, a negative figure where training had none, a ``derivation``
        that reads one value as two arguments where training's never did, puts a figure where
        training's never put one of its shape, compares with a literal they never did, or
        computes a number with decimals they never had."""
        key = self.asked_key(document, question)
        if key is None or answer == UNKNOWN:
            return None
        for rule, value in repeated(derivation):
            if key in self.twice and rule not in self.twice[key]:
                read = f"{value} twice" if rule == ARITHMETIC else f"{rule}({value}, {value})"
                return (
                    f"{read} reads one value as two, which {key}'s "
                    "derivations in training never do; the model found only one of them"
                )
        if derivation and key in self.places:
            for place, value in figure_places(derivation).items():
                if place not in self.places[key]:
                    return (
                        f"{value} is {_described(place)}, where {key}'s derivations in "
                        "training never put one; the model read another value there"
                    )
        if derivation and key in self.constants:
            for constant in comparison_constants(derivation):
                if constant not in self.constants[key]:
                    return (
                        f"{constant} compares with a literal {key}'s derivations in training "
                        "never compare with; the model copied the stated value as the rule's own"
                    )
        # a derived number, of a key whose training derivations computed numbers
        wrote = _decimals(answer) if derivation and NUMBER.fullmatch(answer) else None
        if wrote is not None and wrote not in self.decimals.get(key, [wrote]):
            shown = " or ".join(map(str, self.decimals[key]))
            return (
                f"{answer!r} has {wrote} decimal{'' if wrote == 1 else 's'}, and {key}'s "
                f"derivations in training compute {shown}; the model wrote the rule with "
                "another rounding"
            )
        if key in self.labels:
            allowed = self.labels[key]
            if answer.lower() in allowed:
                return None
            shown = ", ".join(allowed[:6]) + (", ..." if len(allowed) > 6 else "")
            return (
                f"{answer!r} is not an answer this question was trained to have "
                f"({key}: {shown}); it reads another fact, so the model does not give it"
            )
        if key not in self.figures:
            return None
        if not FIGURE.fullmatch(answer):
            return f"{answer!r} is not a figure, and {key} is answered with one"
        if answer.startswith("-") and not self.figures[key]:
            return f"{answer!r} is negative, and {key} never is in training"
        dated = self.dated.get(key)
        if dated is not None and bool(DATE.fullmatch(answer)) != dated:
            if dated:
                return f"{answer!r} is not a date, and {key} is answered with one"
            return f"{answer!r} is a date, and {key} is answered with a number"
        return None


def repeated(derivation: str) -> list[tuple[str, str]]:
    """(rule, value) of each call in ``derivation`` given one stated value as both arguments,
    and (``ARITHMETIC``, figure) of each non-zero figure it uses twice outside such calls
    (``3750000.00 - 900000.00 - 900000.00``: operating expenses subtracted as the cost of goods
    too). Figures inside such calls are the calls' to judge: an eGFR's creatinine, written
    twice in every derivation, sits in ``min(0.9 / 0.7, 1)`` and ``max(...)``, and is let be."""
    calls = ((rule, a.strip(), b.strip()) for rule, a, b in CALL.findall(derivation))
    out = [(rule, a) for rule, a, b in calls if a == b and a.strip("'") != UNSTATED]
    figures = Counter(_OPERAND.findall(CALL.sub(" ", derivation)))
    return out + [(ARITHMETIC, v) for v, n in figures.items() if n > 1 and v.strip("0.")]


def answer_twice(keys: Iterable[str], derivations: Iterable[str]) -> dict[str, list[str]]:
    """Per question key answered with derivations in training, the rules they called with one
    stated value twice (``days`` of an incident and a filing on one day; never ``age``), and
    ``ARITHMETIC`` where they used a figure twice (a full award's claim less itself; never in
    an EBIT's)."""
    return _per_key(keys, derivations, lambda d: (rule for rule, _ in repeated(d)))


def _per_key(
    keys: Iterable[str], texts: Iterable[str], read: Callable[[str], Iterable[str]]
) -> dict[str, list[str]]:
    """Per question key, everything ``read`` finds in its non-empty texts (derivations,
    question forms), sorted."""
    out: dict[str, set[str]] = {}
    for key, text in zip(keys, texts, strict=True):
        if text:
            out.setdefault(key, set()).update(read(text))
    return {key: sorted(found) for key, found in sorted(out.items())}


def _shape(figure: str) -> str:
    """``date``, or a number's decimals: ``0dp`` (a count, a pressure), ``2dp`` (cents)."""
    return "date" if DATE.fullmatch(figure) else f"{_decimals(figure)}dp"


def figure_places(derivation: str) -> dict[str, str]:
    """Each place ``derivation`` puts a figure in, the piece before it and the figure's shape
    (``"min( 2dp"``, ``"^ 1dp"`` at the start, ``"/ 1dp"``), with the first figure put there."""
    out: dict[str, str] = {}
    before = START
    for piece in _TOKEN.findall(derivation):
        shape = _shape(piece) if _OPERAND.fullmatch(piece) else None
        if shape is not None:
            out.setdefault(f"{before} {shape}", piece)
        before = shape or piece
    return out


def comparison_constants(derivation: str) -> list[str]:
    """The literals ``derivation`` compares with (``== 'liable'``), as calc reads them:
    ``'not liable' == ' not liable'`` compares with ``== 'not liable'``."""
    return [f"{op} '{text.strip()}'" for op, text in _CONSTANT.findall(derivation)]


def answer_constants(keys: Iterable[str], derivations: Iterable[str]) -> dict[str, list[str]]:
    """Per question key answered with derivations in training, the literals they compare with:
    "did the plaintiff win?" always with ``== 'liable'``, whatever the judgment stated."""
    return _per_key(keys, derivations, comparison_constants)


def _decimals(number: str) -> int:
    return len(number.partition(".")[2])


def answer_decimals(
    keys: Iterable[str], answers: Iterable[str], derivations: Iterable[str]
) -> dict[str, list[int]]:
    """Per question key whose derivations in training compute numbers (not dates, not labels),
    the decimals of those numbers: an interest coverage always 2 (``round(..., 2)``), an eGFR
    0. The decimals of a stated figure answered as stated are the document's, and not kept."""
    out: dict[str, set[int]] = {}
    for key, answer, derivation in zip(keys, answers, derivations, strict=True):
        if derivation and answer != UNKNOWN:
            out.setdefault(key, set()).add(_decimals(answer) if NUMBER.fullmatch(answer) else -1)
    # a key whose derivations compute anything else (a label, a date) has no decimals to keep
    return {key: sorted(found) for key, found in sorted(out.items()) if -1 not in found}


def _described(place: str) -> str:
    before, shape = place.rsplit(" ", 1)
    decimals = int(shape[:-2]) if shape.endswith("dp") else 0
    plural = "s" if decimals > 1 else ""
    what = {"date": "a date", "0dp": "a whole number"}.get(
        shape, f"a number with {decimals} decimal{plural}"
    )
    return f"{what} at the start" if before == START else f"{what} after {before!r}"


def answer_places(keys: Iterable[str], derivations: Iterable[str]) -> dict[str, list[str]]:
    """Per question key answered with derivations in training, the places they put figures
    in (``figure_places``): a pressure is a whole number, a creatinine has decimals."""
    return _per_key(keys, derivations, figure_places)


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Word-set overlap (Jaccard) of two texts' words."""
    return len(a & b) / max(1, len(a | b))


def domain_marks(vocabularies: dict[str, Iterable[str]]) -> dict[str, list[str]]:
    """Per domain, the words of its texts that no other domain's texts have (of four letters
    or more: "a", "at", "by" mark nothing)."""
    sets = {
        d: {w for t in texts for w in words(t) if len(w) >= 4} for d, texts in vocabularies.items()
    }
    return {
        d: sorted(own - set().union(*(s for o, s in sets.items() if o != d)))
        for d, own in sets.items()
    }


def _by_key(keys: Iterable[str], answers: Iterable[str]) -> dict[str, list[str]]:
    said: dict[str, list[str]] = {}
    for key, answer in zip(keys, answers, strict=True):
        said.setdefault(key, []).append(str(answer))
    return dict(sorted(said.items()))


def answer_labels(keys: Iterable[str], answers: Iterable[str]) -> dict[str, list[str]]:
    """Per question key, the labels its answers are (lower case), for keys whose every answer
    is a label: no digit in it, and few distinct ones (a figure or a name is not a label)."""
    seen = {key: {a.lower() for a in said} for key, said in _by_key(keys, answers).items()}
    return {
        key: sorted(labels)
        for key, labels in seen.items()
        if len(labels) <= LABELS_AT_MOST and not any(c.isdigit() for v in labels for c in v)
    }


def _figure_answers(keys: Iterable[str], answers: Iterable[str]) -> dict[str, list[str]]:
    """Per question key whose every answer but ``unknown`` is a figure (a number, an amount in
    dollars and cents, a date): those answers."""
    out = {}
    for key, said in _by_key(keys, answers).items():
        stated = [a for a in said if a != UNKNOWN]
        if stated and all(FIGURE.fullmatch(a) for a in stated):
            out[key] = stated
    return out


def answer_figures(keys: Iterable[str], answers: Iterable[str]) -> dict[str, bool]:
    """Per question key answered in figures, whether one of them is negative."""
    return {
        key: any(a.startswith("-") for a in stated)
        for key, stated in _figure_answers(keys, answers).items()
    }


def answer_dates(keys: Iterable[str], answers: Iterable[str]) -> dict[str, bool]:
    """Per question key answered in figures, whether they are dates: keys whose answers are all
    dates (True) or none (False); a key with both is left out."""
    kinds = {
        key: {bool(DATE.fullmatch(a)) for a in stated}
        for key, stated in _figure_answers(keys, answers).items()
    }
    return {key: dated.pop() for key, dated in kinds.items() if len(dated) == 1}
