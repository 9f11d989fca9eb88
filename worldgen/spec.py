"""The world model: a causal DAG of named variables, their structural equations and invariants.

A ``WorldSpec`` samples whole columns at once (ancestral sampling in topological order) and
checks every invariant on them. Invariants are declarative rules (``worldgen.rules``), so the same
declaration drives the numpy check here and the Great Expectations suite in ``validation/``.

Categorical variables are held as small integer codes while sampling (fast); the domain's
``categories`` names them. Dates are int32 days since 1970-01-01.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import networkx as nx
import numpy as np

from worldgen.rules import Columns, Invariant, rule_fingerprint, rule_holds, source_text

Equation = Callable[[Columns, np.random.Generator, int], np.ndarray]
DType = Literal["int64", "float64", "bool", "category", "date", "str"]

NUMPY_DTYPES: dict[str, type] = {
    "int64": np.int64,
    "float64": np.float64,
    "bool": np.bool_,
    "category": np.int16,
    "date": np.int32,
}


@dataclass(frozen=True)
class VarDomain:
    """What values a variable may take: its type, range or categories, and unit."""

    dtype: DType
    low: float | None = None
    high: float | None = None
    categories: tuple[str, ...] | None = None
    unit: str = ""

    def contains(self, values: np.ndarray) -> np.ndarray:
        if self.dtype == "category":
            assert self.categories is not None
            return (values >= 0) & (values < len(self.categories))
        ok = np.ones(values.shape, dtype=bool)
        if self.low is not None:
            ok &= values >= self.low
        if self.high is not None:
            ok &= values <= self.high
        return ok


@dataclass(frozen=True)
class Variable:
    name: str
    parents: tuple[str, ...]
    equation: Equation
    domain: VarDomain
    description: str = ""


@dataclass(frozen=True)
class IdScheme:
    """How records map to entities: ``per_entity`` consecutive records share one entity id.

    With ``per_entity > 1`` each record also carries its ``period`` (0-based) within the entity.
    """

    record: str = "record_id"
    entity: str = "entity_id"
    per_entity: int = 1
    period: str | None = None

    def make(self, n: int, offset: int) -> dict[str, np.ndarray]:
        index = np.arange(offset, offset + n, dtype=np.int64)
        cols = {self.record: index, self.entity: index // self.per_entity}
        if self.period is not None:
            cols[self.period] = index % self.per_entity
        return cols

    def variables(self) -> list[Variable]:
        def given(parents: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
            raise AssertionError("id columns are made by IdScheme.make, not sampled")

        ids = VarDomain("int64", low=0, unit="id")
        out = [
            Variable(self.record, (), given, ids, "global record index"),
            Variable(self.entity, (), given, ids, "entity the record belongs to"),
        ]
        if self.period is not None:
            out.append(
                Variable(
                    self.period,
                    (),
                    given,
                    VarDomain("int64", 0, self.per_entity - 1, unit="period"),
                    "period index within the entity",
                )
            )
        return out


@dataclass
class WorldSpec:
    """A domain's causal graph: variables in a DAG, each with its equation, plus invariants."""

    name: str
    version: str
    variables: list[Variable]
    invariants: list[Invariant]
    ids: IdScheme = field(default_factory=IdScheme)
    graph: nx.DiGraph = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.variables = [*self.ids.variables(), *self.variables]
        self._by_name = {v.name: v for v in self.variables}
        self.graph = nx.DiGraph()
        for v in self.variables:
            self.graph.add_node(v.name)
            for p in v.parents:
                if p not in self._by_name:
                    raise ValueError(f"{self.name}: {v.name} has unknown parent {p!r}")
                self.graph.add_edge(p, v.name)
        if not nx.is_directed_acyclic_graph(self.graph):
            raise ValueError(f"{self.name}: the causal graph has a cycle")
        # Ties broken by declaration order so the order (and thus the RNG stream) is stable.
        position = {v.name: i for i, v in enumerate(self.variables)}
        self.order = list(nx.lexicographical_topological_sort(self.graph, key=position.__getitem__))
        self.spec_hash = self._hash()

    @property
    def entity(self) -> str:
        return self.ids.entity

    def variable(self, name: str) -> Variable:
        return self._by_name[name]

    @property
    def columns(self) -> list[str]:
        return [v.name for v in self.variables]

    def categories(self, name: str) -> tuple[str, ...]:
        cats = self._by_name[name].domain.categories
        if cats is None:
            raise KeyError(f"{name} is not categorical")
        return cats

    def code(self, name: str, label: str) -> int:
        return self.categories(name).index(label)

    def sample(self, n: int, rng: np.random.Generator, offset: int = 0) -> dict[str, np.ndarray]:
        """Ancestral sampling: each variable's equation sees its parents' columns.

        ``offset`` is the global index of the first record, so ids stay unique across blocks.
        """
        cols: dict[str, np.ndarray] = self.ids.make(n, offset)
        for name in self.order:
            if name in cols:
                continue
            var = self._by_name[name]
            parents = {p: cols[p] for p in var.parents}
            values = var.equation(parents, rng, n)
            cols[name] = np.asarray(values, dtype=NUMPY_DTYPES.get(var.domain.dtype))
        return cols

    def violations(self, cols: Columns) -> dict[str, np.ndarray]:
        """Per invariant (and per column domain, as ``domain:<col>``), the rows that break it."""
        out: dict[str, np.ndarray] = {}
        for var in self.variables:
            out[f"domain:{var.name}"] = ~var.domain.contains(cols[var.name])
        for inv in self.invariants:
            ok = np.ones(len(cols[self.entity]), dtype=bool)
            for rule in inv.rules:
                ok &= rule_holds(rule, cols, self)
            out[inv.name] = ~ok
        return out

    def _hash(self) -> str:
        h = hashlib.sha256(f"{self.name}:{self.version}".encode())
        for name in self.order:
            var = self._by_name[name]
            h.update(repr((name, var.parents, var.domain)).encode())
            h.update(source_text(var.equation).encode())
        for inv in self.invariants:
            h.update(repr((inv.name, inv.description)).encode())
            for rule in inv.rules:
                h.update(rule_fingerprint(rule).encode())
        return h.hexdigest()


def labels(spec: WorldSpec, name: str, codes: np.ndarray) -> np.ndarray:
    """Category codes to their label strings (object array)."""
    return np.asarray(spec.categories(name), dtype=object)[codes]


def choice_by_row(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row from a (rows, k) matrix of probabilities (inverse CDF)."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cdf[:, -1:]
    return (u > cdf).sum(axis=1).astype(np.int16)


def choice_given(rng: np.random.Generator, table: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """One draw per row from ``table[parent]`` (rows of weights): one searchsorted, no n*k."""
    cdf = np.cumsum(table, axis=1)
    cdf = cdf / cdf[:, -1:]
    k = table.shape[1]
    # Row g's bounds shifted by g make one sorted array; a draw g + u lands in row g's segment.
    bounds = (cdf[:, :-1] + np.arange(len(table))[:, None]).ravel()
    group = np.asarray(parent, dtype=np.int64)
    u = rng.random(len(group)) * (1.0 - 2.0**-40)  # g + u never rounds up to g + 1
    hit = np.searchsorted(bounds, group + u, side="right")
    return (hit - group * (k - 1)).astype(np.int16)
