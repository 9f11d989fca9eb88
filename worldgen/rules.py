"""Invariants and the declarative rules they are made of.

A rule is data (columns, a constant, a table), not code: the same declaration drives the numpy
check in ``WorldSpec.violations`` and the Great Expectations suite in ``validation/``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

Columns = Mapping[str, np.ndarray]


class Categories(Protocol):
    """What rules read of a spec: its invariants and category codes (``worldgen.spec``
    implements it; the rules do not import the spec, which imports them)."""

    @property
    def invariants(self) -> list[Invariant]: ...

    def categories(self, name: str) -> tuple[str, ...]: ...

    def code(self, name: str, label: str) -> int: ...


@dataclass(frozen=True)
class Greater:
    """``a > b`` (or ``a >= b``) on every row."""

    a: str
    b: str
    or_equal: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.a, self.b)

    def holds(self, c: Columns) -> np.ndarray:
        return c[self.a] >= c[self.b] if self.or_equal else c[self.a] > c[self.b]


@dataclass(frozen=True)
class SignedSum:
    """``sum(sign * column) == 0`` exactly, over integer columns (money in cents)."""

    terms: tuple[tuple[str, int], ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.terms)

    def holds(self, c: Columns) -> np.ndarray:
        total = np.zeros(len(c[self.terms[0][0]]), dtype=np.int64)
        for name, sign in self.terms:
            total += sign * c[name]
        return total == 0


@dataclass(frozen=True)
class AllowedPairs:
    """The pair ``(a, b)`` of category labels is one of ``pairs``."""

    a: str
    b: str
    pairs: frozenset[tuple[str, str]]

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.a, self.b)

    def holds(self, c: Columns, spec: Categories) -> np.ndarray:
        cats_a, cats_b = spec.categories(self.a), spec.categories(self.b)
        table = np.zeros((len(cats_a), len(cats_b)), dtype=bool)
        for la, lb in self.pairs:
            table[cats_a.index(la), cats_b.index(lb)] = True
        return table[c[self.a], c[self.b]]


@dataclass(frozen=True)
class Condition:
    """``column == value`` for a category label (the row condition of a conditional rule)."""

    column: str
    value: str


@dataclass(frozen=True)
class ConditionalRange:
    """Where ``when`` holds, ``low <= column <= high``."""

    column: str
    when: Condition
    low: float | None = None
    high: float | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column, self.when.column)

    def holds(self, c: Columns, spec: Categories) -> np.ndarray:
        active = c[self.when.column] == spec.code(self.when.column, self.when.value)
        ok = np.ones(len(active), dtype=bool)
        if self.low is not None:
            ok &= c[self.column] >= self.low
        if self.high is not None:
            ok &= c[self.column] <= self.high
        return ~active | ok


@dataclass(frozen=True)
class Recomputed:
    """A structural equation recomputed from other columns: ``|column - fn(c)| <= tolerance``.

    ``tolerance == 0`` demands exact equality (booleans, categories, integer rules).
    """

    column: str
    inputs: tuple[str, ...]
    fn: Callable[[Columns], np.ndarray]
    tolerance: float = 0.0

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column, *self.inputs)

    def holds(self, c: Columns) -> np.ndarray:
        expected = self.fn(c)
        if self.tolerance == 0:
            return np.asarray(c[self.column] == expected)
        return np.asarray(np.abs(c[self.column] - expected) <= self.tolerance)


@dataclass(frozen=True)
class Unique:
    """The combination of ``columns`` is unique across the dataset."""

    columns: tuple[str, ...]

    def holds(self, c: Columns) -> np.ndarray:
        # Sort once and compare neighbours: ~10x faster than np.unique(axis=0).
        keys = [np.asarray(c[name], dtype=np.int64) for name in self.columns]
        order = np.lexsort(keys[::-1])
        same = np.ones(max(len(order) - 1, 0), dtype=bool)
        for k in keys:
            s = k[order]
            same &= s[1:] == s[:-1]
        dup = np.zeros(len(order), dtype=bool)
        dup[1:] |= same
        dup[:-1] |= same
        ok = np.empty(len(order), dtype=bool)
        ok[order] = ~dup
        return ok


@dataclass(frozen=True)
class CarriedForward:
    """``column`` of each period equals ``previous`` of the same entity's prior period."""

    column: str
    previous: str
    entity: str
    period: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column, self.previous, self.entity, self.period)

    def holds(self, c: Columns) -> np.ndarray:
        order = np.lexsort((c[self.period], c[self.entity]))
        ent, per = c[self.entity][order], c[self.period][order]
        cur, prev = c[self.column][order], c[self.previous][order]
        follows = np.zeros(len(order), dtype=bool)
        follows[1:] = (ent[1:] == ent[:-1]) & (per[1:] == per[:-1] + 1)
        ok_sorted = np.ones(len(order), dtype=bool)
        ok_sorted[1:] = ~follows[1:] | (cur[1:] == prev[:-1])
        ok = np.empty_like(ok_sorted)
        ok[order] = ok_sorted
        return ok


Rule = Greater | SignedSum | AllowedPairs | ConditionalRange | Recomputed | Unique | CarriedForward


@dataclass(frozen=True)
class Invariant:
    """A named, described fact about every record; holds when all its rules hold."""

    name: str
    description: str
    rules: tuple[Rule, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for rule in self.rules:
            seen.update(dict.fromkeys(rule.columns))
        return tuple(seen)


def rule_holds(rule: Rule, cols: Columns, spec: Categories) -> np.ndarray:
    if isinstance(rule, AllowedPairs | ConditionalRange):
        return rule.holds(cols, spec)
    return rule.holds(cols)


def source_text(fn: Callable[..., object]) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return getattr(fn, "__qualname__", repr(fn))


def rule_fingerprint(rule: Rule) -> str:
    if isinstance(rule, Recomputed):
        return repr((type(rule).__name__, rule.column, rule.inputs, rule.tolerance)) + source_text(
            rule.fn
        )
    if isinstance(rule, AllowedPairs):
        return repr((type(rule).__name__, rule.a, rule.b, sorted(rule.pairs)))
    return repr(rule)


def all_rules(spec: Categories) -> Iterable[tuple[Invariant, Rule]]:
    for inv in spec.invariants:
        for rule in inv.rules:
            yield inv, rule
