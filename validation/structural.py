"""Checked, not trusted: each entity's split, the phrasing families, and the content the
dataset's digest covers.

Evaluation is only honest while no test entity reaches training. The split column is written
into records, documents and QA separately, so a single edited table could move an entity into
training without breaking any expectation on values. These checks recompute the split of every
entity from the manifest's seed (``worldgen.dataset.assign_split``) and require every row of
every table to carry it; a leak fails validation naming the entities.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from validation.report import CheckResult
from worldgen.dataset import HELD_OUT, assign_split, dataset_digest
from worldgen.domains import get_domain
from worldgen.integrity import content_mismatch
from worldgen.plan import JOIN, decode_plan
from worldgen.render import Renderer
from worldgen.surface import Families, held_out

SHOWN = 10  # entities named in the failure line; the rest are counted


def _check(domain: str, table: str, ids: np.ndarray, rule: str) -> CheckResult:
    entities = sorted({int(i) for i in ids})
    named = ", ".join(map(str, entities[:SHOWN])) + (" ..." if len(entities) > SHOWN else "")
    return CheckResult(
        domain,
        table,
        "split_by_entity",
        "structural",
        ("entity_id", "split"),
        not entities,
        len(ids),
        (),
        error=f"{len(entities)} entities {rule}: {named}" if entities else "",
    )


def split_checks(
    domain: str, seed: int, tables: dict[str, pd.DataFrame | None]
) -> list[CheckResult]:
    """One check per table that carries splits: every row's split is its entity's by the rule."""
    out = []
    for table, frame in tables.items():
        if frame is None or not {"entity_id", "split"} <= set(frame.columns):
            continue
        entity = frame["entity_id"].to_numpy()
        expected = assign_split(entity, seed)
        wrong = frame["split"].astype(str).to_numpy() != expected
        out.append(
            _check(
                domain,
                table,
                entity[wrong],
                f"carry another split than the seeded rule assigns in {table}",
            )
        )
    return out


def digest_checks(
    uri: str, manifest: dict[str, Any], domain: str, tables: dict[str, pd.DataFrame | None]
) -> list[CheckResult]:
    """The verdict binds to the digest: the content read must be the content it covers, and the
    manifest's fields must hash to it (a manifest edited by hand does not)."""
    problems = []
    if dataset_digest(manifest) != manifest.get("digest"):
        problems.append("the manifest's fields do not hash to its digest (edited by hand?)")
    if all(frame is not None for frame in tables.values()):
        whole = {t: f for t, f in tables.items() if f is not None}
        mismatch = content_mismatch(uri, domain, whole)
        if mismatch:
            problems.append(mismatch)
    return [
        CheckResult(domain, "files", "content_digest", "structural", (), False, error=problem)
        for problem in problems
    ]


def phrasing_checks(
    domain: str, manifest: dict[str, Any], tables: dict[str, pd.DataFrame | None]
) -> list[CheckResult]:
    """Every document and question is written in its rendering's families (in-family, or only
    held-out), by the seeded rule the manifest records: a held-out form in a training dataset
    would let the held-out-phrasing test read phrasing the model trained on."""
    phrasing = manifest.get("phrasing")
    if phrasing is None:  # a dataset from before surface forms: one family, nothing to check
        return []
    families = held_out(int(manifest["seed"]))
    heldout = phrasing.get("rendering") == HELD_OUT
    renderer = get_domain(domain).renderer
    out = []
    if phrasing.get("held_out") != families.as_dict():
        out.append(
            CheckResult(
                domain,
                "files",
                "phrasing_rule",
                "structural",
                (),
                False,
                error="the manifest's held-out families are not the seeded rule's",
            )
        )
    docs, qa = tables.get("documents"), tables.get("qa")
    if docs is not None:
        bad = [
            int(rid)
            for rid, plan in zip(docs["record_id"], docs["plan"], strict=True)
            if not _plan_in_family(renderer, str(plan), families, heldout)
        ]
        out.append(_phrasing_result(domain, "documents", ("plan",), bad))
    if qa is not None:
        asked = {q.key: set(q.phrasings(families, heldout)) for q in renderer.questions}
        bad = [
            int(rid)
            for rid, key, question in zip(qa["record_id"], qa["key"], qa["question"], strict=True)
            if question not in asked.get(key, ())
        ]
        out.append(_phrasing_result(domain, "qa", ("key", "question"), bad))
    return out


def _plan_in_family(renderer: Renderer, plan: str, families: Families, heldout: bool) -> bool:
    try:
        entries = decode_plan(plan)
        return all(
            (JOIN not in entry and form in renderer.written_by(entry).choices(families, heldout))
            or (JOIN in entry and not heldout)  # shared sentences are in-family
            for entry, form in entries
        )
    except (KeyError, ValueError):
        return False


def _phrasing_result(
    domain: str, table: str, columns: tuple[str, ...], bad: list[int]
) -> CheckResult:
    records = sorted(set(bad))
    named = ", ".join(map(str, records[:SHOWN])) + (" ..." if len(records) > SHOWN else "")
    return CheckResult(
        domain,
        table,
        "phrasing_family",
        "structural",
        columns,
        not records,
        len(bad),
        tuple(records[:SHOWN]),
        error=f"{len(records)} records written outside their rendering's families: {named}"
        if records
        else "",
    )
