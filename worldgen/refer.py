"""Facts a document gives through a chain of cross-references, as filings and case files do.

Instead of ``Revenue: $x.`` a document may say ``Revenue is reported in exhibit c.``, elsewhere
``Exhibit c refers to exhibit f.`` and elsewhere again ``Exhibit f shows $x.``: the value's own
sentence never names what it is. The sentences of a chain land at random places in the document,
so which value answers a question is found only by following the references one at a time,
from the question's role to the last exhibit: each link is one more step of reading before any
rule applies. That is the reasoning a deeper model should do better than a shallow one (the
issue's "questions hard enough that compute matters"), written in the world model's rendering.

Plan entries (``worldgen.plan``): ``@key>c`` names the fact and its first exhibit, ``@c>f`` is
a link, ``@f=key`` states the value. Exhibit labels are single letters, distinct within a
document.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from worldgen.plan import JOIN, REF

if TYPE_CHECKING:
    from worldgen.render import Fact, Row

LABELS = string.ascii_lowercase


@dataclass(frozen=True)
class Referral:
    """Which facts may be given by reference (``roles``: fact key -> how a sentence names it),
    how often (``p`` per stated fact) and through at most ``depth`` exhibits."""

    roles: Mapping[str, str]
    value: str = "{v}"
    p: float = 0.3
    depth: int = 3
    noun: str = "exhibit"
    pointers: tuple[str, ...] = ("{Role} is reported in {noun} {x}.", "For {role}, see {noun} {x}.")
    links: tuple[str, ...] = ("{Noun} {x} refers to {noun} {y}.", "{Noun} {x}: see {noun} {y}.")
    values: tuple[str, ...] = ("{Noun} {x} shows {value}.", "{Noun} {x}: {value}.")

    def refer(self, plan: list[tuple[str, int]], rng: np.random.Generator) -> None:
        """Give some stated facts of ``roles`` by a chain of exhibits instead, in place: the
        naming sentence keeps the fact's place, the links and the value go anywhere."""
        labels = iter(LABELS[i] for i in rng.permutation(len(LABELS)))
        chains: list[list[tuple[str, int]]] = []
        for i, (key, _) in enumerate(plan):
            if key not in self.roles or rng.random() >= self.p:
                continue
            chain = [next(labels) for _ in range(int(rng.integers(1, self.depth + 1)))]
            plan[i] = (f"{REF}{key}>{chain[0]}", int(rng.integers(len(self.pointers))))
            rest = [
                (f"{REF}{x}>{y}", int(rng.integers(len(self.links)))) for x, y in pairwise(chain)
            ]
            chains.append([*rest, (f"{REF}{chain[-1]}={key}", int(rng.integers(len(self.values))))])
        for entry in (e for chain in chains for e in chain):
            plan.insert(int(rng.integers(len(plan) + 1)), entry)

    def sentence(self, facts: Mapping[str, Fact], entry: str, row: Row, template: int) -> str:
        """The sentence of one ``@`` plan entry."""
        body = entry[len(REF) :]
        noun = {"noun": self.noun, "Noun": self.noun.capitalize()}
        if "=" in body:
            x, key = body.split("=")
            value = self.value.format(v=facts[key].value(row))
            return self.values[template].format(x=x, value=value, **noun)
        left, y = body.split(">")
        if left in self.roles:
            role = self.roles[left]
            capital = role[:1].upper() + role[1:]
            return self.pointers[template].format(role=role, Role=capital, x=y, **noun)
        if len(left) != 1 or JOIN in left:
            raise ValueError(f"not a reference entry: {entry!r}")
        return self.links[template].format(x=left, y=y, **noun)
