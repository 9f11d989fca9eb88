"""Distractors: figures a careless reader would copy, stated beside the facts they resemble.

Real documents state values that are not the one asked for: the previous visit's eGFR beside
today's, last year's revenue beside this year's, a co-defendant's claim beside the plaintiff's.
A ``Distractor`` is such a sentence, written next to a fact ``of`` of the same kind. Its value is
a function of the record the world model knows exactly (the fact's value moved by an amount the
record id fixes), never equal to the fact's, and stating it states nothing: the questions are
resolved from the facts alone, so "What was revenue?" about a document that gives only the prior
year's revenue is ``unknown``.

A document states at most one distractor (``SHARE`` of documents do), in the plan as
``~name`` (``worldgen.plan``), so a render check re-renders it from the record like any fact.
Its sentences are hand-written and never held out; its value formats follow the families as a
fact's do: training writes only in-family formats, the held-out rendering only held-out ones (a
measure, whose formats are never held out, is not used there). Written in the grammar's frames
around its own names ("Prior-year revenue came in at ..."), it cost more than it taught at the
default budget: one main job (seed 0) read 0.82 in-family and 0.60 on held-out phrasing, against
0.90 and 0.70 with hand-written sentences, multistep questions the most (``benchmarks/QUALITY.md``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

import numpy as np

from worldgen.plan import DISTRACT
from worldgen.surface import (
    Families,
    Form,
    ValueKind,
    Written,
    fact_forms,
    write,
    writes,
)
from worldgen.values import money

Row = Mapping[str, Any]  # a record's fields, as worldgen.render has them
SHARE = 0.2  # of documents state one distractor (0.4 cost more than it taught)


def _spread(name: str, row: Row) -> int:
    """A number fixed by the record and the distractor, spread over 0..2**32."""
    return zlib.crc32(f"{name}:{int(row['record_id'])}".encode())


def moved_money(field: str) -> Callable[[str, Row], str]:
    """The amount 5-30% above or below the record's (another year's figure)."""

    def value(name: str, row: Row) -> str:
        h = _spread(name, row)
        cents = int(row[field])
        pct = 5 + h % 26
        moved = cents * (100 + pct if h >> 8 & 1 else 100 - pct) // 100
        return money(moved if moved != cents else cents + 100_000 * (1 + h % 90))

    return value


def moved_number(field: str) -> Callable[[str, Row], str]:
    """The measure 5-30% above or below the record's, in its precision, above zero
    (another visit's reading)."""

    def value(name: str, row: Row) -> str:
        h = _spread(name, row)
        canonical = Decimal(str(row[field]))
        step = Decimal(1).scaleb(canonical.as_tuple().exponent)  # type: ignore[arg-type]
        pct = Decimal(5 + h % 26) / 100
        moved = (canonical * (1 + pct if h >> 8 & 1 else 1 - pct)).quantize(step)
        if moved == canonical or moved <= 0:
            moved = canonical + step * (1 + h % 9)
        return str(moved)

    return value


def earlier_date(field: str) -> Callable[[str, Row], str]:
    """A day 30-400 days before the record's (an earlier visit, a related filing)."""

    def value(name: str, row: Row) -> str:
        return str(
            date.fromisoformat(str(row[field])) - timedelta(days=30 + _spread(name, row) % 371)
        )

    return value


@dataclass(frozen=True)
class Distractor(Written):
    """A sentence stating a value like fact ``of``'s that belongs to something else."""

    name: str
    of: str  # the fact it resembles
    templates: tuple[str, ...]  # hand-written, with {v}
    value: Callable[[str, Row], str]
    kind: ValueKind = "number"
    unit: str = ""

    @cached_property
    def forms(self) -> tuple[Form, ...]:
        """Its sentences in each of its kind's formats (no grammar frames: see the module)."""
        return fact_forms(self.templates, (), self.kind, self.unit)

    def draw(
        self, row: Row, rng: np.random.Generator, families: Families | None, heldout: bool
    ) -> int | None:
        """A form whose format states this record's value; None when none can (the held-out
        formats of a date in May, a figure that is no whole number of millions)."""
        value = self.stated(row)
        choices = self.choices(families, heldout)
        able = [i for i in choices if writes(self.forms[i], value, self.unit)]
        return able[int(rng.integers(len(able)))] if able else None

    def stated(self, row: Row) -> str:
        """Its value for this record (canonical, as answers write values)."""
        return self.value(self.name, row)

    def sentence(self, row: Row, form: int) -> str:
        return write(self.forms[form], self.stated(row), self.unit)

    @property
    def entry(self) -> str:
        return DISTRACT + self.name


def place(
    plan: list[tuple[str, int]],
    distractors: tuple[Distractor, ...],
    row: Row,
    rng: np.random.Generator,
    families: Families | None,
    heldout: bool,
) -> None:
    """With chance ``SHARE``, one distractor at a random place in the plan (in place)."""
    usable = [d for d in distractors if d.choices(families, heldout)]
    if not usable or rng.random() >= SHARE:
        return
    chosen = usable[int(rng.integers(len(usable)))]
    form = chosen.draw(row, rng, families, heldout)
    if form is None:
        return
    plan.insert(int(rng.integers(len(plan) + 1)), (chosen.entry, form))
