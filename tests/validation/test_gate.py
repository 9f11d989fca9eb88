"""The consistency gate: suites derived from the spec, exact fault detection, loud failures.

Heavy tests (100k records per domain, every fault mode) share one clean dataset per domain,
generated once per session; each fault is injected into a copy of it.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from flows.cli import app as veracity
from infra import storage
from validation import (
    DataQualityError,
    build_suite,
    require_valid,
    validate,
    validation_status,
)
from validation.sidecar import SIDECAR
from worldgen.dataset import (
    DatasetRef,
    generate,
    load_table,
    process_pool,
    read_manifest,
    write_variant,
)
from worldgen.domains import domain_names, get_domain
from worldgen.inject import inject_faults
from worldgen.rules import Greater, Invariant

N_LARGE = 100_000
RATE = 0.001


def available_domains() -> list[str]:
    out = []
    for name in domain_names():
        try:
            get_domain(name)
        except (ImportError, AttributeError):  # a domain still being written
            continue
        out.append(name)
    return out


DOMAINS = available_domains()
FAULT_CASES = [(d, m) for d in DOMAINS for m in get_domain(d).faults]


# --- suites ---------------------------------------------------------------------------------


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_rule_and_variable_is_in_the_suite(domain: str) -> None:
    dom = get_domain(domain)
    ds = build_suite(dom.spec, dom.renderer)
    checks = {e.meta["check"] for s in ds.suites.values() for e in s.expectations}
    for inv in dom.spec.invariants:
        rules = [
            e for s in ds.suites.values() for e in s.expectations if e.meta["check"] == inv.name
        ]
        assert len(rules) == len(inv.rules), inv.name
    for var in dom.spec.variables:
        assert f"not_null:{var.name}" in checks
        assert f"type:{var.name}" in checks
    assert {"document_matches_record", "answer_matches_record"} <= checks
    assert ds.n_expectations >= 20
    assert len(ds.suite_hash) == 64


def test_a_new_invariant_appears_without_touching_validation() -> None:
    spec = copy.copy(get_domain("medical").spec)
    spec.name = "medical_extended"
    spec.invariants = [
        *spec.invariants,
        Invariant("sbp_over_age", "made up for the test", (Greater("sbp", "age"),)),
    ]
    before = build_suite(get_domain("medical").spec)
    after = build_suite(spec)
    assert after.n_expectations == before.n_expectations + 1
    new = [e for e in after.suites["records"].expectations if e.meta["check"] == "sbp_over_age"]
    assert [e.expectation_type for e in new] == ["expect_column_pair_values_a_to_be_greater_than_b"]
    assert after.suite_hash != before.suite_hash


# --- small datasets: loud, precise failures -------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> DatasetRef:
    return generate(["medical"], 5000, 7, str(tmp_path_factory.mktemp("small") / "ds"), shards=2)


def _variant(small: DatasetRef, tmp_path: Path, records: pd.DataFrame) -> str:
    tables = {t: load_table(small.uri, "medical", t) for t in ("records", "documents", "qa")}
    tables["records"] = records
    return write_variant(small.uri, "medical", tables, str(tmp_path / "variant"), {"test": 1}).uri


def test_clean_small_dataset_passes_and_is_accepted(small: DatasetRef, veracity_home: Path) -> None:
    manifest_before = storage.read_bytes(storage.join(small.uri, "manifest.json"))
    report = require_valid(small)
    assert report.success and not report.failures
    assert report.n_expectations >= 20
    assert Path(report.data_docs).is_file()
    assert str(report.data_docs).startswith(str(veracity_home.resolve()))
    assert validation_status(small.uri) == "accepted"
    assert storage.read_bytes(storage.join(small.uri, "manifest.json")) == manifest_before


def test_missing_column_is_named(small: DatasetRef, tmp_path: Path) -> None:
    records = load_table(small.uri, "medical", "records").drop(columns=["glucose"])
    uri = _variant(small, tmp_path, records)
    with pytest.raises(DataQualityError) as err:
        require_valid(uri)
    assert "glucose" in str(err.value)
    assert "schema:records" in str(err.value)


def test_wrong_dtype_is_named(small: DatasetRef, tmp_path: Path) -> None:
    records = load_table(small.uri, "medical", "records")
    records["age"] = records["age"].astype(str)
    uri = _variant(small, tmp_path, records)
    with pytest.raises(DataQualityError) as err:
        require_valid(uri)
    assert "type:age" in str(err.value)


def test_empty_shard_is_named(small: DatasetRef, tmp_path: Path) -> None:
    out = tmp_path / "empty"
    manifest = read_manifest(small.uri)
    for rel in manifest["files"]:
        storage.write_bytes(str(out / rel), storage.read_bytes(storage.join(small.uri, rel)))
    rel = "medical/qa/part-00001.parquet"
    empty = load_table(small.uri, "medical", "qa").iloc[:0]
    data = storage.write_parquet(str(out / rel), empty)
    import hashlib

    manifest["files"][rel].update(sha256=hashlib.sha256(data).hexdigest(), rows=0, bytes=len(data))
    storage.write_bytes(str(out / "manifest.json"), json.dumps(manifest).encode())
    with pytest.raises(DataQualityError) as err:
        require_valid(str(out))
    assert "empty shard medical/qa/part-00001.parquet" in str(err.value)


def test_a_shard_changed_after_writing_is_named(small: DatasetRef, tmp_path: Path) -> None:
    out = tmp_path / "tampered"
    shutil.copytree(small.uri, out)
    for shard in (out / "medical" / "records").glob("*.parquet"):
        shard.write_bytes(b"not parquet")
    report = validate(str(out), mark=False, docs=False)
    rel = "medical/records/part-00000.parquet"
    assert not report.success
    assert f"shard {rel} was modified after it was written" in report.summary()
    assert " expectations over no readable rows " in report.summary()


def test_rejected_dataset_is_marked_and_kept(small: DatasetRef, tmp_path: Path) -> None:
    records = load_table(small.uri, "medical", "records")
    records.loc[[5, 17], "dbp"] = records.loc[[5, 17], "sbp"] + 1
    uri = _variant(small, tmp_path, records)
    manifest_before = storage.read_bytes(storage.join(uri, "manifest.json"))
    with pytest.raises(DataQualityError) as err:
        require_valid(uri)
    message = str(err.value)
    assert "bp_ordered" in message and "Data Docs:" in message
    ids = records.loc[[5, 17], "record_id"].tolist()
    assert err.value.report.unexpected_ids["medical"] >= set(ids)
    assert validation_status(uri) == "rejected"
    side = json.loads(storage.read_bytes(storage.join(uri, SIDECAR)))
    assert side["status"] == "rejected" and side["unexpected"]["bp_ordered"] == 2
    # Kept intact: every file still there, the manifest untouched; re-validating keeps history.
    assert storage.read_bytes(storage.join(uri, "manifest.json")) == manifest_before
    validate(uri)
    side = json.loads(storage.read_bytes(storage.join(uri, SIDECAR)))
    assert side["status"] == "rejected" and len(side["history"]) == 2
    assert load_table(uri, "medical", "records").shape == records.shape


def test_status_of_unvalidated_dataset(small: DatasetRef, tmp_path: Path) -> None:
    records = load_table(small.uri, "medical", "records")
    assert validation_status(_variant(small, tmp_path, records)) == "unvalidated"


def test_cli_validate_exit_codes(
    small: DatasetRef, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def validate_command(uri: str) -> None:
        result = CliRunner().invoke(veracity, ["validate", uri])
        print(result.stdout, end="")
        print(result.stderr, end="", file=sys.stderr)
        if result.exit_code:
            raise typer.Exit(result.exit_code)

    validate_command(small.uri)
    assert "PASSED" in capsys.readouterr().out
    records = load_table(small.uri, "medical", "records")
    records.loc[[3], "dbp"] = records.loc[[3], "sbp"]
    uri = _variant(small, tmp_path, records)
    with pytest.raises(typer.Exit) as exit_:
        validate_command(uri)
    assert exit_.value.exit_code == 3
    out = capsys.readouterr()
    assert (
        "bp_ordered" in out.out and "Data Docs:" in out.out and "Traceback" not in out.out + out.err
    )
    with pytest.raises(typer.Exit) as exit_:
        validate_command(str(tmp_path / "nowhere"))
    assert exit_.value.exit_code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "manifest.json" in err


# --- 100k records per domain: clean passes, every fault is found exactly --------------------


@pytest.fixture(scope="session")
def clean_100k(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DatasetRef]:
    root = tmp_path_factory.mktemp("clean100k")
    # generation is pure Python: two shards on two processes take half the time of one
    with process_pool(2) as mapper:
        return {
            d: generate([d], N_LARGE, 11, str(root / d), shards=2, mapper=mapper) for d in DOMAINS
        }


@pytest.mark.slow
@pytest.mark.parametrize("domain", DOMAINS)
def test_clean_100k_passes_with_zero_unexpected(
    domain: str, clean_100k: dict[str, DatasetRef]
) -> None:
    report = validate(clean_100k[domain], mark=False)
    assert report.success, report.summary()
    assert report.rows == {domain: N_LARGE}
    assert all(r.unexpected_count == 0 and not r.error for r in report.results)


@pytest.mark.slow
@pytest.mark.parametrize(("domain", "mode"), FAULT_CASES, ids=[f"{d}-{m}" for d, m in FAULT_CASES])
def test_every_fault_is_found_exactly(
    domain: str, mode: str, clean_100k: dict[str, DatasetRef], tmp_path: Path
) -> None:
    injected = inject_faults(clean_100k[domain].uri, domain, mode, RATE, 5, str(tmp_path / mode))
    report = validate(injected.uri, mark=False, docs=False)
    assert not report.success
    found = report.unexpected_ids.get(domain, set())
    expected = set(injected.ids.tolist())
    assert found == expected, (
        f"missed {sorted(expected - found)[:10]}, spurious {sorted(found - expected)[:10]}\n"
        + report.summary()
    )
