"""Great Expectations suites derived from a ``WorldSpec``, never written by hand.

One domain gets one ``DomainSuites``: a suite per batch the gate validates, because GX runs a
suite against one batch and one execution engine:

``records``      pandas, the records frame (plus helper columns generated here): every
                 variable's declared domain (not null, type, range or value set), every invariant
                 rule as its strongest native expectation, ``Recomputed`` rules as a custom one.
``records_sql``  SQLite (via SQLAlchemy), only when a rule needs SQL (``CarriedForward``, a
                 cross-row self-join): ``UnexpectedRowsExpectation``.
``documents``    pandas, documents joined to their records: every document re-renders exactly.
``qa``           pandas, QA pairs joined to their records and plans: every answer follows.

Rule to expectation:

==================  ==========================================================================
Greater             ExpectColumnPairValuesAToBeGreaterThanB(or_equal=...)
SignedSum           ExpectMulticolumnSumToEqual(sum_total=0) over the terms, negative terms
                    as negated helper columns (``__neg_<col>``) the gate adds to the frame
AllowedPairs        ExpectColumnPairValuesToBeInSet
ConditionalRange    ExpectColumnValuesToBeBetween with a ``row_condition``
Unique              ExpectCompoundColumnsToBeUnique (ExpectColumnValuesToBeUnique for one)
Recomputed          ExpectRecomputedColumnToMatch (custom, evaluates ``rule.fn``)
CarriedForward      UnexpectedRowsExpectation: SQL self-join on entity and period + 1
==================  ==========================================================================

A new invariant or variable in a spec shows up here without touching ``validation/``; a new
*kind* of rule fails loudly in ``rule_expectations``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import great_expectations.expectations as gxe
from great_expectations.core.expectation_suite import ExpectationSuite
from great_expectations.expectations.expectation import Expectation
from great_expectations.expectations.row_conditions import Column

from validation.expectations import (
    FOUND,
    ExpectAnswersToMatchRecords,
    ExpectDocumentsToMatchRecords,
    ExpectRecomputedColumnToMatch,
    register,
)
from worldgen.render import KINDS, Renderer
from worldgen.rules import (
    AllowedPairs,
    CarriedForward,
    ConditionalRange,
    Greater,
    Recomputed,
    Rule,
    SignedSum,
    Unique,
)
from worldgen.spec import VarDomain, WorldSpec

SPLITS = ("train", "validation", "test")  # worldgen.dataset.SPLITS, without importing storage
BATCHES = ("records", "records_sql", "documents", "qa")
DOCUMENT_COLUMNS = ("record_id", "plan", "document")
QA_COLUMNS = ("record_id", "qa_id", "kind", "key", "question", "answer", "derivation")

# VarDomain dtype -> the type name ExpectColumnValuesToBeOfType checks on pandas.
TYPE_NAMES = {
    "int64": "int64",
    "float64": "float64",
    "bool": "bool",
    "category": "CategoricalDtypeType",
    "date": "datetime64",
    "str": "str",
}


@dataclass(frozen=True)
class Helper:
    """A column the gate derives before validating: ``name = factor * source``."""

    name: str
    source: str
    factor: int


@dataclass
class DomainSuites:
    """Everything the gate runs for one domain, and a hash that names exactly that."""

    domain: str
    spec_hash: str
    suites: dict[str, ExpectationSuite]
    helpers: tuple[Helper, ...] = ()
    sql_columns: tuple[str, ...] = ()
    suite_hash: str = field(default="")

    @property
    def n_expectations(self) -> int:
        return sum(len(s.expectations) for s in self.suites.values())

    def counts_by_type(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for suite in self.suites.values():
            for exp in suite.expectations:
                out[exp.expectation_type] = out.get(exp.expectation_type, 0) + 1
        return dict(sorted(out.items()))


def helper_name(source: str, factor: int) -> str:
    return f"__neg_{source}" if factor == -1 else f"__x{factor}_{source}".replace("-", "m")


def _meta(check: str, **extra: Any) -> dict[str, Any]:
    return {"check": check, **extra}


def _day(days: float) -> datetime:
    return datetime(1970, 1, 1) + timedelta(days=float(days))


def column_expectations(name: str, dom: VarDomain) -> Iterator[Expectation]:
    """A variable's declared domain: present, typed, in range or in its value set."""
    yield gxe.ExpectColumnValuesToNotBeNull(column=name, meta=_meta(f"not_null:{name}"))
    yield gxe.ExpectColumnValuesToBeOfType(
        column=name, type_=TYPE_NAMES[dom.dtype], meta=_meta(f"type:{name}")
    )
    if dom.dtype == "category":
        assert dom.categories is not None
        yield gxe.ExpectColumnValuesToBeInSet(
            column=name, value_set=list(dom.categories), meta=_meta(f"domain:{name}")
        )
    elif dom.dtype in ("int64", "float64", "date") and (
        dom.low is not None or dom.high is not None
    ):
        convert = _day if dom.dtype == "date" else (int if dom.dtype == "int64" else float)
        yield gxe.ExpectColumnValuesToBeBetween(
            column=name,
            min_value=None if dom.low is None else convert(dom.low),
            max_value=None if dom.high is None else convert(dom.high),
            meta=_meta(f"domain:{name}", unit=dom.unit),
        )


def rule_expectations(
    spec: WorldSpec, invariant: str, index: int, rule: Rule
) -> Iterator[tuple[str, Expectation]]:
    """The strongest expectation(s) for one rule, each with the batch it runs on."""
    meta = _meta(invariant, rule=index, rule_type=type(rule).__name__)
    if isinstance(rule, Greater):
        yield (
            "records",
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=rule.a, column_B=rule.b, or_equal=rule.or_equal, meta=meta
            ),
        )
    elif isinstance(rule, SignedSum):
        columns = [n if s == 1 else helper_name(n, s) for n, s in rule.terms]
        yield (
            "records",
            gxe.ExpectMulticolumnSumToEqual(
                column_list=columns, sum_total=0, ignore_row_if="never", meta=meta
            ),
        )
    elif isinstance(rule, AllowedPairs):
        yield (
            "records",
            gxe.ExpectColumnPairValuesToBeInSet(
                column_A=rule.a,
                column_B=rule.b,
                value_pairs_set=sorted(rule.pairs),
                ignore_row_if="neither",
                meta=meta,
            ),
        )
    elif isinstance(rule, ConditionalRange):
        dom = spec.variable(rule.column).domain
        convert = _day if dom.dtype == "date" else float
        yield (
            "records",
            gxe.ExpectColumnValuesToBeBetween(
                column=rule.column,
                min_value=None if rule.low is None else convert(rule.low),
                max_value=None if rule.high is None else convert(rule.high),
                row_condition=Column(rule.when.column) == rule.when.value,
                meta=meta,
            ),
        )
    elif isinstance(rule, Unique):
        if len(rule.columns) == 1:
            yield "records", gxe.ExpectColumnValuesToBeUnique(column=rule.columns[0], meta=meta)
        else:
            yield (
                "records",
                gxe.ExpectCompoundColumnsToBeUnique(column_list=list(rule.columns), meta=meta),
            )
    elif isinstance(rule, Recomputed):
        yield (
            "records",
            ExpectRecomputedColumnToMatch(
                column_list=list(rule.columns),
                domain=spec.name,
                invariant=invariant,
                rule_index=index,
                tolerance=rule.tolerance,
                meta=meta,
            ),
        )
    elif isinstance(rule, CarriedForward):
        c = rule
        query = (
            f"SELECT cur.record_id AS record_id FROM {{batch}} AS cur "
            f"JOIN {{batch}} AS prev ON cur.{c.entity} = prev.{c.entity} "
            f"AND cur.{c.period} = prev.{c.period} + 1 "
            f"WHERE cur.{c.column} IS NULL OR prev.{c.previous} IS NULL "
            f"OR cur.{c.column} <> prev.{c.previous}"
        )
        yield (
            "records_sql",
            gxe.UnexpectedRowsExpectation(
                unexpected_rows_query=query,
                description=f"{c.column} of each period equals {c.previous} of the prior period",
                meta=meta,
            ),
        )
    else:  # pragma: no cover - a new Rule type must be mapped here
        raise TypeError(f"no expectation for rule type {type(rule).__name__} ({invariant})")


def helpers_for(spec: WorldSpec) -> tuple[Helper, ...]:
    seen: dict[str, Helper] = {}
    for inv in spec.invariants:
        for rule in inv.rules:
            if isinstance(rule, SignedSum):
                for name, sign in rule.terms:
                    if sign != 1:
                        seen[helper_name(name, sign)] = Helper(helper_name(name, sign), name, sign)
    return tuple(seen.values())


def build_suite(spec: WorldSpec, renderer: Renderer | None = None) -> DomainSuites:
    """The suites for ``spec`` (documents and QA suites only when a ``renderer`` is given)."""
    register(spec, renderer)
    domain = spec.name
    batches: dict[str, list[Expectation]] = {b: [] for b in BATCHES}
    records = batches["records"]
    helpers = helpers_for(spec)
    columns = [*spec.columns, "split", *(h.name for h in helpers)]
    records.append(
        gxe.ExpectTableColumnsToMatchSet(
            column_set=columns, exact_match=False, meta=_meta("schema:records")
        )
    )
    records.append(gxe.ExpectTableRowCountToBeBetween(min_value=1, meta=_meta("rows:records")))
    records.append(
        gxe.ExpectColumnValuesToBeUnique(column=spec.ids.record, meta=_meta("unique:id"))
    )
    for var in spec.variables:
        records.extend(column_expectations(var.name, var.domain))
    records.append(gxe.ExpectColumnValuesToNotBeNull(column="split", meta=_meta("not_null:split")))
    records.append(
        gxe.ExpectColumnValuesToBeInSet(
            column="split", value_set=list(SPLITS), meta=_meta("domain:split")
        )
    )
    sql_columns: dict[str, None] = {}
    for inv in spec.invariants:
        for index, rule in enumerate(inv.rules):
            for batch, expectation in rule_expectations(spec, inv.name, index, rule):
                batches[batch].append(expectation)
                if batch == "records_sql":
                    sql_columns.update(dict.fromkeys((spec.ids.record, *rule.columns)))
    if renderer is not None:
        record_cols = [c for c in spec.columns if c != spec.ids.record]
        docs = batches["documents"]
        for col in DOCUMENT_COLUMNS:
            docs.append(
                gxe.ExpectColumnValuesToNotBeNull(column=col, meta=_meta(f"not_null:{col}"))
            )
        docs.append(
            gxe.ExpectColumnValuesToBeUnique(column="record_id", meta=_meta("unique:document"))
        )
        docs.append(
            ExpectDocumentsToMatchRecords(
                column_list=[*DOCUMENT_COLUMNS, FOUND, *record_cols],
                domain=domain,
                meta=_meta("document_matches_record"),
            )
        )
        qa = batches["qa"]
        for col in QA_COLUMNS:
            qa.append(gxe.ExpectColumnValuesToNotBeNull(column=col, meta=_meta(f"not_null:{col}")))
        qa.append(gxe.ExpectColumnValuesToBeUnique(column="qa_id", meta=_meta("unique:qa_id")))
        qa.append(
            gxe.ExpectColumnValuesToBeInSet(
                column="kind", value_set=list(KINDS), meta=_meta("domain:kind")
            )
        )
        qa.append(
            ExpectAnswersToMatchRecords(
                column_list=[
                    "record_id",
                    "kind",
                    "key",
                    "answer",
                    "derivation",
                    "plan",
                    FOUND,
                    *record_cols,
                ],
                domain=domain,
                meta=_meta("answer_matches_record"),
            )
        )
    suites = {
        batch: ExpectationSuite(name=f"veracity.{domain}.{batch}", expectations=exps)
        for batch, exps in batches.items()
        if exps
    }
    out = DomainSuites(domain, spec.spec_hash, suites, helpers, tuple(sql_columns))
    out.suite_hash = suite_hash(out)
    return out


# The gate's own checks beside the expectations (structural, splits): a change here makes every
# earlier verdict stale. 2: each entity's split is recomputed from the seeded rule; 3: the
# content is re-hashed against the digest.
CHECKS_VERSION = 3


def suite_hash(ds: DomainSuites) -> str:
    """Hash of the spec (equation sources included) and every expectation's configuration."""
    h = hashlib.sha256(f"{ds.domain}:{ds.spec_hash}:{CHECKS_VERSION}".encode())
    for batch in sorted(ds.suites):
        for exp in ds.suites[batch].expectations:
            config = exp.configuration.to_json_dict()
            config.pop("id", None)
            h.update(json.dumps(config, sort_keys=True, default=str).encode())
    return h.hexdigest()
