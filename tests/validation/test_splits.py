"""Splits checked, not trusted: a test entity relabelled `train` in one table fails validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from validation import validate
from worldgen.dataset import DatasetRef, generate, load_table, write_variant

TABLES = ("records", "documents", "qa")


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> DatasetRef:
    return generate(["medical"], 120, 4, str(tmp_path_factory.mktemp("splits") / "ds"))


def test_a_clean_dataset_passes_the_split_checks(small: DatasetRef) -> None:
    report = validate(small.uri, docs=False)
    checks = [r for r in report.results if r.check == "split_by_entity"]
    assert len(checks) == 3 and all(r.success for r in checks)


@pytest.mark.parametrize("table", TABLES)
def test_test_entities_moved_into_training_in_one_table_are_named(
    small: DatasetRef, table: str, tmp_path: Path
) -> None:
    tables = {t: load_table(small.uri, "medical", t) for t in TABLES}
    frame = tables[table]
    moved = sorted(frame.loc[frame["split"] == "test", "entity_id"].unique()[:4].tolist())
    frame.loc[frame["entity_id"].isin(moved), "split"] = "train"
    uri = write_variant(small.uri, "medical", tables, str(tmp_path / "leak"), {"leak": table}).uri
    report = validate(uri, docs=False)
    failed = [r for r in report.failures if r.check == "split_by_entity"]
    assert not report.success and [r.batch for r in failed] == [table]
    assert failed[0].error.startswith("4 entities carry another split")
    assert all(str(e) in failed[0].error for e in moved), failed[0].error
