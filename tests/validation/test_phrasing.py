"""Phrasing checked, not trusted: a held-out form in a training dataset fails validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from validation import validate
from worldgen.dataset import HELD_OUT, DatasetRef, generate, load_table, write_variant
from worldgen.domains import get_domain
from worldgen.frames import to_rows
from worldgen.plan import decode_plan, encode_plan
from worldgen.surface import held_out

TABLES = ("records", "documents", "qa")
SEED = 4


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[DatasetRef, DatasetRef]:
    root = tmp_path_factory.mktemp("phrasing")
    inside = generate(["medical"], 120, SEED, str(root / "in"))
    return inside, generate(["medical"], 120, SEED, str(root / "out"), phrasing=HELD_OUT)


def test_both_renderings_pass_the_phrasing_checks(pair: tuple[DatasetRef, DatasetRef]) -> None:
    for ref in pair:
        report = validate(ref.uri, docs=False)
        checks = [r for r in report.results if r.check == "phrasing_family"]
        assert report.success and len(checks) == 2 and all(r.success for r in checks)


def test_held_out_phrasing_in_training_data_is_named(
    pair: tuple[DatasetRef, DatasetRef], tmp_path: Path
) -> None:
    """One document re-rendered in a held-out form, one question asked in a held-out frame:
    both consistent with their records, both caught, with their record ids."""
    inside, _ = pair
    tables = {t: load_table(inside.uri, "medical", t) for t in TABLES}
    renderer, families = get_domain("medical").renderer, held_out(SEED)
    docs, qa = tables["documents"], tables["qa"]
    spec = get_domain("medical").spec
    rows = {int(r["record_id"]): r for r in to_rows(tables["records"], spec)}
    i = next(i for i, p in enumerate(docs["plan"]) if "+" not in p and "sbp" in p)
    plan = decode_plan(docs.at[i, "plan"])
    fact = renderer.fact("sbp")
    outside = fact.choices(families, heldout=True)[0]
    plan = [(k, outside if k == "sbp" else f) for k, f in plan]
    docs.at[i, "plan"] = encode_plan(plan)
    record = dict(rows[int(docs.at[i, "record_id"])])
    docs.at[i, "document"] = renderer.document(record, plan)
    j = 0
    question = renderer.question(qa.at[j, "key"])
    qa.at[j, "question"] = question.phrasings(families, heldout=True)[0]
    uri = write_variant(inside.uri, "medical", tables, str(tmp_path / "leak"), {"leak": "x"}).uri
    report = validate(uri, docs=False)
    failed = {r.batch: r for r in report.failures if r.check == "phrasing_family"}
    assert not report.success and set(failed) == {"documents", "qa"}
    assert failed["documents"].record_ids == (int(docs.at[i, "record_id"]),)
    assert failed["qa"].record_ids == (int(qa.at[j, "record_id"]),)
    assert "written outside their rendering's families" in failed["qa"].error
