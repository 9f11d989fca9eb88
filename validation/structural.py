"""Checked, not trusted: each entity's split, and the content the dataset's digest covers.

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
from worldgen.dataset import assign_split, dataset_digest
from worldgen.integrity import content_mismatch

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
