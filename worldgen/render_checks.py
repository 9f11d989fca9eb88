"""Consistency checks of rendered text: does each document and QA pair follow from its record?

A document is re-rendered from its record and stored plan and must match exactly; a QA pair's
kind, answer and derivation are resolved again from the facts its document states and must
agree. ``validation.expectations`` runs these checks as the gate's render expectations (the
tests and benchmarks run them too). They only read what ``worldgen.render`` produces and are
never needed to generate data, so they live apart from the renderer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worldgen.plan import decode_plan, stated_keys
from worldgen.render import Renderer, Row


def document_mismatches(
    renderer: Renderer, rows: Mapping[int, Row], documents: list[dict[str, Any]]
) -> list[int]:
    """Record ids whose document is not exactly what their record and plan render to."""
    bad = []
    for doc in documents:
        row = rows.get(doc["record_id"])
        try:
            ok = (
                row is not None
                and renderer.document(row, decode_plan(doc["plan"])) == doc["document"]
            )
        except (KeyError, ValueError, IndexError):
            ok = False
        if not ok:
            bad.append(int(doc["record_id"]))
    return bad


def answer_mismatches(
    renderer: Renderer,
    rows: Mapping[int, Row],
    plans: Mapping[int, str],
    qas: list[dict[str, Any]],
) -> list[int]:
    """Record ids with a QA answer, kind or derivation (when the QA carries one) that the record
    and its document do not support."""
    bad = set()
    values_by_record: dict[int, dict[str, str]] = {}  # a record has ~6 questions: decode once
    for qa in qas:
        rid = qa["record_id"]
        row = rows.get(rid)
        try:
            if row is None:
                raise KeyError(rid)
            values = values_by_record.get(rid)
            if values is None:
                stated = stated_keys(decode_plan(plans.get(rid) or ""))
                values = values_by_record[rid] = renderer.stated_values(row, stated)
            question = renderer.question(qa["key"])
            resolution = question.resolve(row, values)
            ok = qa["kind"] == resolution.kind and qa["answer"] == question.expected(
                row, resolution
            )
            if ok and "derivation" in qa:
                ok = qa["derivation"] == resolution.derivation
        except (KeyError, ValueError):
            ok = False
        if not ok:
            bad.add(int(rid))
    return sorted(bad)
