"""Custom Great Expectations for what GX cannot express natively, plus one faster native metric.

* ``ExpectRecomputedColumnToMatch``: a structural equation recomputed from its inputs
  (``Recomputed`` rules, e.g. glucose vs ADAG(HbA1c), eGFR vs CKD-EPI 2021).
* ``ExpectDocumentsToMatchRecords``: every document re-renders exactly from its record and plan.
* ``ExpectAnswersToMatchRecords``: every QA answer (and kind) follows from its record and the
  facts its document states.

They are multicolumn map expectations, so GX reports unexpected rows (and, with
``unexpected_index_column_names=["record_id"]``, their record ids) exactly as it does for native
ones, and Data Docs show them beside the native expectations.

A rule holds a Python function, which a suite (JSON) cannot carry: the expectations name the
domain, invariant and rule index, and look the rule up in the spec registered by
``validation.suites.build_suite`` (or the world model's own domain of that name).

``column_pair_values.in_set`` is re-registered for pandas with a vectorised implementation
(GX's own iterates rows with ``iterrows``, ~30 s per million rows); semantics are unchanged.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import MulticolumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnPairMapMetricProvider,
    MulticolumnMapMetricProvider,
    column_pair_condition_partial,
    multicolumn_condition_partial,
)

from worldgen.domains import get_domain
from worldgen.frames import EPOCH, records, to_rows
from worldgen.render import Renderer
from worldgen.render_checks import answer_mismatches, document_mismatches
from worldgen.rules import Recomputed, rule_holds
from worldgen.spec import WorldSpec

FOUND = "__record_found"  # documents/qa rows whose record exists (set by the gate's join)

_SPECS: dict[str, WorldSpec] = {}
_RENDERERS: dict[str, Renderer] = {}


def register(spec: WorldSpec, renderer: Renderer | None = None) -> None:
    """Make ``spec`` (and its renderer) the one the custom expectations of its domain use."""
    _SPECS[spec.name] = spec
    if renderer is not None:
        _RENDERERS[spec.name] = renderer


def spec_for(domain: str) -> WorldSpec:
    if domain not in _SPECS:
        _SPECS[domain] = get_domain(domain).spec
    return _SPECS[domain]


def renderer_for(domain: str) -> Renderer:
    if domain not in _RENDERERS:
        _RENDERERS[domain] = get_domain(domain).renderer
    return _RENDERERS[domain]


def rule_for(domain: str, invariant: str, rule_index: int) -> Recomputed:
    spec = spec_for(domain)
    for inv in spec.invariants:
        if inv.name == invariant:
            rule = inv.rules[rule_index]
            if not isinstance(rule, Recomputed):
                raise TypeError(f"{domain}.{invariant}[{rule_index}] is not a Recomputed rule")
            return rule
    raise KeyError(f"{domain} has no invariant {invariant!r}")


def to_columns(spec: WorldSpec, frame: pd.DataFrame, names: tuple[str, ...]) -> dict[str, Any]:
    """The sampling representation (category codes, day numbers) of just ``names``.

    Fast path for categoricals whose categories are the spec's (``.cat.codes``); anything else
    is mapped label by label, an unknown label becoming -1 as in ``worldgen.frames``.
    """
    cols: dict[str, Any] = {}
    for name in names:
        series = frame[name]
        dtype = spec.variable(name).domain.dtype
        if dtype == "category":
            cats = list(spec.categories(name))
            if (
                isinstance(series.dtype, pd.CategoricalDtype)
                and list(series.cat.categories) == cats
            ):
                cols[name] = series.cat.codes.to_numpy().astype(np.int16)
            else:
                codes = pd.Categorical(series.astype(str), categories=cats).codes
                cols[name] = np.asarray(codes, dtype=np.int16)
        elif dtype == "date":
            days = series.to_numpy().astype("datetime64[D]") - EPOCH
            cols[name] = days.astype(np.int64)
        else:
            cols[name] = series.to_numpy()
    return cols


# --- recomputed structural equations -------------------------------------------------------


# The domain of every multicolumn map metric here: GX's own keys for a column-list domain.
MULTICOLUMN_DOMAIN_KEYS = (
    "batch_id",
    "table",
    "column_list",
    "row_condition",
    "condition_parser",
    "ignore_row_if",
)


class RecomputedHolds(MulticolumnMapMetricProvider):
    condition_metric_name = "veracity.recomputed.holds"
    condition_domain_keys = MULTICOLUMN_DOMAIN_KEYS
    condition_value_keys = ("domain", "invariant", "rule_index")

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs: Any) -> pd.Series:
        domain, invariant, index = kwargs["domain"], kwargs["invariant"], kwargs["rule_index"]
        rule = rule_for(domain, invariant, int(index))
        spec = spec_for(domain)
        cols = to_columns(spec, column_list, rule.columns)
        with np.errstate(all="ignore"):
            ok = np.asarray(rule_holds(rule, cols, spec), dtype=bool)
        return pd.Series(ok, index=column_list.index)


class ExpectRecomputedColumnToMatch(MulticolumnMapExpectation):
    """The first column equals a structural equation of the others (within a tolerance).

    The equation is the world model's ``Recomputed`` rule ``rule_index`` of invariant
    ``invariant`` in domain ``domain``.
    """

    domain: str
    invariant: str
    rule_index: int = 0
    tolerance: float = 0.0  # shown in Data Docs; the rule itself is authoritative
    ignore_row_if: str = "never"  # type: ignore[assignment]

    map_metric = "veracity.recomputed.holds"
    success_keys = ("mostly", "domain", "invariant", "rule_index")
    args_keys = ("column_list", "domain", "invariant", "rule_index")

    library_metadata: ClassVar[dict[str, Any]] = {"maturity": "experimental", "tags": ["veracity"]}


# --- documents and answers against their records -------------------------------------------


def _rows(spec: WorldSpec, frame: pd.DataFrame) -> dict[int, dict[str, Any]]:
    found = frame[frame[FOUND].to_numpy(dtype=bool)] if FOUND in frame else frame
    found = found.drop_duplicates("record_id")
    return {int(r["record_id"]): r for r in to_rows(found, spec)}


class DocumentsMatchRecords(MulticolumnMapMetricProvider):
    condition_metric_name = "veracity.documents.match_records"
    condition_domain_keys = MULTICOLUMN_DOMAIN_KEYS
    condition_value_keys = ("domain",)

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs: Any) -> pd.Series:
        domain = kwargs["domain"]
        spec = spec_for(domain)
        rows = _rows(spec, column_list)
        docs = records(column_list, ["record_id", "plan", "document"])
        bad = document_mismatches(renderer_for(domain), rows, docs)
        return ~column_list["record_id"].isin(bad)


class ExpectDocumentsToMatchRecords(MulticolumnMapExpectation):
    """Each document is exactly what its record renders to under the document's own plan."""

    domain: str
    ignore_row_if: str = "never"  # type: ignore[assignment]

    map_metric = "veracity.documents.match_records"
    success_keys = ("mostly", "domain")
    args_keys = ("column_list", "domain")

    library_metadata: ClassVar[dict[str, Any]] = {"maturity": "experimental", "tags": ["veracity"]}


class AnswersMatchRecords(MulticolumnMapMetricProvider):
    condition_metric_name = "veracity.answers.match_records"
    condition_domain_keys = MULTICOLUMN_DOMAIN_KEYS
    condition_value_keys = ("domain",)

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs: Any) -> pd.Series:
        domain = kwargs["domain"]
        spec = spec_for(domain)
        rows = _rows(spec, column_list)
        firsts = column_list.drop_duplicates("record_id")
        plans = {
            int(rid): plan
            for rid, plan, found in zip(
                firsts["record_id"], firsts["plan"], firsts[FOUND], strict=True
            )
            if found and isinstance(plan, str)
        }
        qas = records(column_list, ["record_id", "kind", "key", "answer", "derivation"])
        bad = answer_mismatches(renderer_for(domain), rows, plans, qas)
        return ~column_list["record_id"].isin(bad)


class ExpectAnswersToMatchRecords(MulticolumnMapExpectation):
    """Each QA answer, kind and derivation follow from its record and the facts its document
    states."""

    domain: str
    ignore_row_if: str = "never"  # type: ignore[assignment]

    map_metric = "veracity.answers.match_records"
    success_keys = ("mostly", "domain")
    args_keys = ("column_list", "domain")

    library_metadata: ClassVar[dict[str, Any]] = {"maturity": "experimental", "tags": ["veracity"]}


# --- a vectorised pandas implementation of a native metric ----------------------------------

logging.getLogger("great_expectations.expectations.registry").setLevel(logging.ERROR)


class FastColumnPairValuesInSet(ColumnPairMapMetricProvider):
    """Same metric as GX's ``column_pair_values.in_set``, same semantics, without ``iterrows``."""

    condition_metric_name = "column_pair_values.in_set"
    condition_value_keys = ("value_pairs_set",)
    condition_domain_keys = ("batch_id", "table", "column_A", "column_B", "ignore_row_if")

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, **kwargs: Any) -> Any:
        pairs = kwargs.get("value_pairs_set")
        if pairs is None:
            return np.ones(len(column_A), dtype=np.bool_)
        allowed = {(a, b) for a, b in pairs}
        # Decide each distinct (a, b) once, then broadcast: O(rows) numpy, O(distinct) Python.
        # factorize marks a missing value -1, which indexes the trailing None.
        codes_a, uniques_a = pd.factorize(column_A)
        codes_b, uniques_b = pd.factorize(column_B)
        values_a = [*uniques_a, None]
        values_b = [*uniques_b, None]
        table = np.array([[(a, b) in allowed for b in values_b] for a in values_a], dtype=bool)
        table = table.reshape(len(values_a), len(values_b))
        return pd.Series(table[codes_a, codes_b], index=column_A.index)
