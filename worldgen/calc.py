"""The derivation language: how an answer follows from values a document states.

The world model writes, for every question it can answer by a rule, the rule applied to the
stated values (``17203888.06 - 11992130.54``); a model learns to write the same and this
evaluator computes it exactly, so arithmetic is never left to a network's guess. Amounts are
``Decimal`` (exact cents), dates are ``datetime.date``, powers fall back to float as the
world model's own equations do, and the result prints in the world model's canonical form.

Grammar (no ``eval``; anything else is a ``CalcError``)::

    expr    := or
    or      := and ("or" and)*            and := not ("and" not)*
    not     := "not" not | compare        compare := sum (("<"|"<="|">"|">="|"=="|"!=") sum)?
    sum     := product (("+"|"-") product)*
    product := power (("*"|"/") power)*   power := unary ("**" unary)?
    unary   := "-" unary | atom
    atom    := NUMBER | DATE | WORD | 'LABEL' | NAME "(" expr ("," expr)* ")" | "(" expr ")"

A quoted ``'label'`` is a category value as the document states it (``'type 2 diabetes'``).
The word ``unstated`` (bare or quoted) stands where a value the document does not give would
go. It follows Kleene's three-valued logic: anything computed from it is unstated too, except
where ``and`` / ``or`` are decided without it (``no and unstated`` is ``no``, ``yes or
unstated`` is ``yes``) and in ``elements()``, which needs only the findings its claim requires.
A derivation whose result is unstated computes to nothing (``CalcError``), so its answer is
``unknown``; one decided despite a gap has its answer.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
from bisect import bisect_right
from collections.abc import Callable
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

Value = Any  # Decimal | float | int | bool | dt.date | str
UNSTATED = "unstated"
_TOKEN = re.compile(
    r"\s*(?:(?P<date>\d{4}-\d{2}-\d{2})|(?P<num>\d+(?:\.\d+)?)|(?P<op>\*\*|<=|>=|==|!=|[-+*/(),<>])"
    r"|(?P<word>[a-z_]+)|(?P<text>'[^']*'))"
)


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}


class CalcError(ValueError):
    """The text is not a derivation this language can compute."""


class _Unstated:
    """A value the document does not give (Kleene's unknown): it absorbs every operation but a
    decided ``and`` / ``or``."""

    def __repr__(self) -> str:
        return UNSTATED


GAP = _Unstated()


def _gap(*values: Value) -> bool:
    return any(v is GAP for v in values)


def _and(a: Value, b: Value) -> Value:
    if (a is not GAP and not a) or (b is not GAP and not b):
        return False
    return GAP if _gap(a, b) else True


def _or(a: Value, b: Value) -> Value:
    if (a is not GAP and a) or (b is not GAP and b):
        return True
    return GAP if _gap(a, b) else False


def _add_years(day: dt.date, years: Value) -> dt.date:
    try:
        return day.replace(year=day.year + int(years))
    except ValueError:  # 29 February in a non-leap year
        return day.replace(year=day.year + int(years), day=28)


def _age(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _quantize(x: Value, places: Value, rounding: str) -> Decimal:
    return Decimal(x).quantize(Decimal(1).scaleb(-int(places)), rounding=rounding)


# KDIGO 2012 GFR categories: G1 >= 90, G2 60-89, G3a 45-59, G3b 30-44, G4 15-29, G5 < 15
GFR_BOUNDS = (15, 30, 45, 60, 90)
GFR_STAGES = ("5", "4", "3b", "3a", "2", "1")


def _gfr_stage(egfr: Value) -> str:
    return f"stage {GFR_STAGES[bisect_right(GFR_BOUNDS, egfr)]}"


# the diagnoses each drug is indicated for (the medical world's prescribing rule)
INDICATIONS: dict[str, tuple[str, ...]] = {
    "metformin": ("prediabetes", "type 2 diabetes"),
    "empagliflozin": ("type 2 diabetes", "chronic kidney disease"),
}


def indicated(drug: Value, diagnosis: Value) -> bool:
    """Is the drug indicated for the diagnosis (both lower case, as derivations read them)?"""
    if drug not in INDICATIONS:
        raise ValueError(f"no indications known for {drug!r}")
    return diagnosis in INDICATIONS[drug]


# years to file per jurisdiction and claim (the legal world's statute table; its sources are
# cited in the docstring of worldgen/domains/legal/__init__.py)
LIMITATION_YEARS: dict[str, dict[str, int]] = {
    "california": {
        "negligence": 2,
        "breach of written contract": 4,
        "breach of oral contract": 2,
        "defamation": 1,
        "fraud": 3,
    },
    "new york": {
        "negligence": 3,
        "breach of written contract": 6,
        "breach of oral contract": 6,
        "defamation": 1,
        "fraud": 6,
    },
    "texas": {
        "negligence": 2,
        "breach of written contract": 4,
        "breach of oral contract": 4,
        "defamation": 1,
        "fraud": 4,
    },
}


def limitation(jurisdiction: Value, claim: Value) -> int:
    """Years the statute allows for the claim in the jurisdiction (both lower case)."""
    try:
        return LIMITATION_YEARS[str(jurisdiction)][str(claim)]
    except KeyError:
        raise ValueError(f"no limitation period known for {claim!r} in {jurisdiction!r}") from None


# the findings each claim requires, of duty, breach, causation and damages in that order (the
# legal world's elements table; illustrative)
REQUIRED_ELEMENTS: dict[str, tuple[str, ...]] = {
    "negligence": ("duty", "breach", "causation", "damages"),
    "breach of written contract": ("duty", "breach", "damages"),
    "breach of oral contract": ("duty", "breach", "damages"),
    "defamation": ("breach", "causation", "damages"),
    "fraud": ("duty", "breach", "causation", "damages"),
}
FINDINGS = ("duty", "breach", "causation", "damages")
FLAGS = {"yes": True, "no": False}  # how a stated yes / no reads in a derivation


def elements(claim: Value, *findings: Value) -> Value:
    """Were the elements the claim requires all proven? ``findings`` are the four in FINDINGS
    order. Kleene: an unstated finding the claim does not require cannot matter, and an
    unstated claim matters only when the claims would disagree (an unproven breach fails all)."""
    if claim is GAP:
        verdicts = {_proven(c, findings) for c in REQUIRED_ELEMENTS}
        return verdicts.pop() if len(verdicts) == 1 else GAP
    return _proven(claim, findings)


def _proven(claim: Value, findings: tuple[Value, ...]) -> Value:
    if claim not in REQUIRED_ELEMENTS:
        raise ValueError(f"no elements known for {claim!r}")
    if len(findings) != len(FINDINGS):
        raise ValueError(f"elements() takes the claim and {len(FINDINGS)} findings")
    proven: Value = True
    # every finding is checked, a required one or not: a misread value is an error either way
    for name, finding in zip(FINDINGS, map(_finding, findings), strict=True):
        if name in REQUIRED_ELEMENTS[claim]:
            proven = _and(proven, finding)
    return proven


def liable(found: Value) -> Value:
    """The judgment a finding of liability (yes / no) reads as."""
    found = _finding(found)
    if found is GAP:
        return GAP
    return "liable" if found else "not liable"


def _finding(value: Value) -> Value:
    if value is not GAP and not isinstance(value, bool):
        raise ValueError(f"a finding is yes or no, not {value!r}")
    return value


FUNCTIONS: dict[str, Callable[..., Value]] = {
    "days": lambda a, b: (b - a).days,  # days from a to b
    "age": _age,  # whole years from a birth date to a date
    "add_years": _add_years,  # same calendar day later (29 Feb -> 28 Feb)
    "round": lambda x, n: _quantize(x, n, ROUND_HALF_UP),
    "floor": lambda x, n: _quantize(x, n, ROUND_FLOOR),
    "rint": lambda x: round(float(x)),  # half to even, as numpy's rint
    "gfr_stage": _gfr_stage,  # the KDIGO stage an eGFR falls in
    "indicated": indicated,  # indicated(metformin, 'prediabetes'): is the drug for it?
    "limitation": limitation,  # limitation('texas', 'fraud'): years the statute allows
    "elements": elements,  # elements('fraud', yes, yes, no, yes): every required one proven?
    "liable": liable,  # liable(yes): 'liable'
    "min": min,
    "max": max,
}
# functions that read a gap themselves, as and / or do, instead of being absorbed by it
KLEENE_FUNCTIONS = frozenset({"elements", "liable"})
_READS_GAP = re.compile(rf"\b(?:and|or|{'|'.join(sorted(KLEENE_FUNCTIONS))})\b", re.IGNORECASE)


def may_decide_despite_gaps(text: str) -> bool:
    """Whether a derivation holds anything that reads a gap (and, or, a Kleene function).
    Without one, every gap reaches the result and the derivation cannot compute: callers
    skip parsing it (most gapped derivations are ``days(2016-02-15, unstated)``)."""
    return _READS_GAP.search(text) is not None


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos, text = 0, text.strip().lower()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise CalcError(f"cannot read {text[pos : pos + 12]!r}")
            kind = m.lastgroup or "op"
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise CalcError("derivation ends too early")
        tok = self.tokens[self.i]
        if expected is not None and tok[1] != expected:
            raise CalcError(f"expected {expected!r}, found {tok[1]!r}")
        self.i += 1
        return tok

    def expr(self) -> Value:
        left = self.conj()
        while self.peek() == "or":
            self.take()
            left = _or(left, self.conj())
        return left

    def conj(self) -> Value:
        left = self.neg()
        while self.peek() == "and":
            self.take()
            left = _and(left, self.neg())
        return left

    def neg(self) -> Value:
        if self.peek() == "not":
            self.take()
            value = self.neg()
            return GAP if value is GAP else not value
        return self.compare()

    def compare(self) -> Value:
        left = self.sum()
        op = self.peek()
        if op in ("<", "<=", ">", ">=", "==", "!="):
            self.take()
            right = self.sum()
            if _gap(left, right):
                return GAP
            return {
                "<": left < right,
                "<=": left <= right,
                ">": left > right,
                ">=": left >= right,
                "==": left == right,
                "!=": left != right,
            }[op]
        return left

    def sum(self) -> Value:
        return self.chain(self.product, ("+", "-"))

    def product(self) -> Value:
        return self.chain(self.power, ("*", "/"))

    def chain(self, operand: Callable[[], Value], ops: tuple[str, str]) -> Value:
        """A left-associative run of ``operand (op operand)*`` for one precedence level."""
        left = operand()
        while self.peek() in ops:
            op = _ARITHMETIC[self.take()[1]]
            left = _mixed(left, operand(), op)
        return left

    def power(self) -> Value:
        base = self.unary()
        if self.peek() == "**":
            self.take()
            exponent = self.unary()
            return GAP if _gap(base, exponent) else float(base) ** float(exponent)
        return base

    def unary(self) -> Value:
        if self.peek() == "-":
            self.take()
            value = self.unary()
            return GAP if value is GAP else -value
        return self.atom()

    def atom(self) -> Value:
        kind, text = self.take()
        if kind == "num":
            return Decimal(text)
        if kind == "date":
            return dt.date.fromisoformat(text)
        if text == "(":
            value = self.expr()
            self.take(")")
            return value
        if kind == "word" and self.peek() == "(":
            if text not in FUNCTIONS:
                raise CalcError(f"unknown function {text!r}")
            self.take("(")
            args = [self.expr()]
            while self.peek() == ",":
                self.take()
                args.append(self.expr())
            self.take(")")
            if _gap(*args) and text not in KLEENE_FUNCTIONS:
                return GAP
            return FUNCTIONS[text](*args)
        if text.strip("' ") == UNSTATED:
            return GAP
        if kind == "text":  # a pointer decodes as its own word: "' type 2 diabetes'"
            return text[1:-1].strip()
        if kind == "word":
            return FLAGS.get(text, text)
        raise CalcError(f"unexpected {text!r}")


def _mixed(a: Value, b: Value, op: Callable[[Any, Any], Value]) -> Value:
    """Decimal with Decimal stays exact; a float on either side makes the result a float."""
    if _gap(a, b):
        return GAP
    if isinstance(a, float) or isinstance(b, float):
        return op(float(a), float(b))
    return op(a, b)


def evaluate(text: str) -> Value:
    parser = _Parser(text)
    try:
        value = parser.expr()
    except CalcError:
        raise
    except (TypeError, ValueError, AttributeError, ArithmeticError, RecursionError) as exc:
        # a written derivation can be wrong in any way: a date where a number belongs, ...
        raise CalcError(f"cannot compute {text!r}: {exc}") from None
    if parser.peek() is not None:
        raise CalcError(f"unexpected {parser.peek()!r} after a complete derivation")
    if value is GAP:
        raise CalcError("the derivation needs a value the document does not state")
    return value


def canonical(value: Value) -> str:
    """The world model's form of a computed value: yes/no, ISO dates, exact decimals."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CalcError("the derivation does not give a finite number")
        return repr(value)
    return str(value)


def compute(text: str) -> str:
    """Evaluate a derivation and print its result canonically."""
    return canonical(evaluate(text))
