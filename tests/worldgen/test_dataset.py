from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from infra import storage
from worldgen import dataset as ds
from worldgen.domains import domain_names
from worldgen.values import canonical_of

N = 9000  # three blocks, so shards really split the work


@pytest.fixture(scope="module")
def medical(tmp_path_factory: pytest.TempPathFactory) -> ds.DatasetRef:
    return ds.generate(["medical"], N, 11, str(tmp_path_factory.mktemp("d") / "med"), shards=1)


def test_digest_is_the_same_for_any_shard_count(medical: ds.DatasetRef, tmp_path: Path) -> None:
    # four shards on a process pool: neither the shard count nor the executor changes a byte
    with ds.process_pool(2) as mapper:
        four = ds.generate(["medical"], N, 11, str(tmp_path / "four"), shards=4, mapper=mapper)
    assert four.digest == medical.digest
    assert len([f for f in ds.read_manifest(four.uri)["files"] if "/records/" in f]) == 3
    one = ds.load_table(medical.uri, "medical", "qa")
    pd.testing.assert_frame_equal(one, ds.load_table(four.uri, "medical", "qa"))


def test_other_seed_other_digest(medical: ds.DatasetRef, tmp_path: Path) -> None:
    assert ds.generate(["medical"], N, 12, str(tmp_path / "x")).digest != medical.digest


def test_manifest_describes_the_dataset(medical: ds.DatasetRef) -> None:
    m = ds.read_manifest(medical.uri)
    info = m["domains"]["medical"]
    assert m["digest"] == medical.digest and m["seed"] == 11
    assert info["rows"]["records"] == N and sum(info["splits"].values()) == N
    assert set(info["schema"]) == {"records", "documents", "qa"}
    assert all(len(f["sha256"]) == 64 for f in m["files"].values())


def test_splits_are_disjoint_by_entity(medical: ds.DatasetRef) -> None:
    qa = ds.load_qa(medical.uri)
    by_split = {
        s: set(qa.loc[qa["split"] == s, "entity_id"]) for s in ("train", "validation", "test")
    }
    assert all(by_split.values())
    assert not (by_split["train"] & by_split["test"]) and not (
        by_split["train"] & by_split["validation"]
    )
    # No test entity's document text appears among training documents.
    train_docs = set(qa.loc[qa["split"] == "train", "document"])
    assert not train_docs & set(qa.loc[qa["split"] == "test", "document"])


def test_tampered_shard_is_refused(tmp_path: Path) -> None:
    ref = ds.generate(["medical"], 500, 1, str(tmp_path / "t"))
    shard = tmp_path / "t" / "medical" / "qa" / "part-00000.parquet"
    frame = pd.read_parquet(shard)
    frame.loc[0, "answer"] = "tampered"
    frame.to_parquet(shard)
    with pytest.raises(ds.DatasetError, match=r"medical/qa/part-00000.parquet was modified"):
        ds.load_table(ref.uri, "medical", "qa")


def test_existing_dataset_is_never_overwritten(medical: ds.DatasetRef) -> None:
    with pytest.raises(ds.DatasetError, match="already holds a dataset"):
        ds.generate(["medical"], N, 11, medical.uri)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((["space"], 10, 0, 1, "out"), "unknown domain"),
        ((["medical"], 0, 0, 1, "out"), "--n must be"),
        ((["medical"], 10, -1, 1, "out"), "--seed"),
        ((["medical"], 10, 0, 0, "out"), "--shards"),
        ((["medical"], 10, 0, 1, "../../etc"), "not a safe path"),
    ],
)
def test_bad_arguments_are_named(args: tuple, message: str) -> None:
    with pytest.raises(ds.DatasetError, match=message):
        ds.check_arguments(*args)


def test_missing_dataset_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ds.DatasetError, match=r"manifest\.json is missing"):
        ds.read_manifest(str(tmp_path / "none"))


def test_corrupt_manifest_is_named(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ds.DatasetError, match="not valid JSON"):
        ds.read_manifest(str(tmp_path))


def test_all_domains_generate_and_render(tmp_path: Path) -> None:
    ref = ds.generate(domain_names(), 300, 5, str(tmp_path / "all"))
    qa = ds.load_qa(ref.uri)
    assert set(qa["domain"]) == set(domain_names())
    assert set(qa["kind"]) == {"lookup", "derived", "multistep", "unknown"}
    assert (qa.loc[qa["kind"] == "unknown", "answer"] == "unknown").all()
    assert (qa["kind"].isin(["derived", "multistep"])).mean() >= 0.5


@pytest.mark.services
def test_s3_dataset_round_trip(s3_bucket: str, tmp_path: Path) -> None:
    local = ds.generate(["medical"], 700, 3, str(tmp_path / "local"), shards=2)
    remote = ds.generate(["medical"], 700, 3, f"s3://{s3_bucket}/datasets/m", shards=2)
    assert remote.digest == local.digest
    pd.testing.assert_frame_equal(ds.load_qa(remote.uri), ds.load_qa(local.uri))
    manifest = json.loads(storage.read_bytes(f"s3://{s3_bucket}/datasets/m/manifest.json"))
    assert manifest["digest"] == local.digest


def test_medical_lookup_answers_are_stated_in_the_document(medical: ds.DatasetRef) -> None:
    """A value in any format reads back to the answer; a label is written as it is."""
    qa = ds.load_qa(medical.uri)
    lookups = qa[qa["kind"] == "lookup"]
    assert len(lookups) > 100
    for answer, document in zip(lookups["answer"], lookups["document"], strict=True):
        assert answer in canonical_of(document) or answer.lower() in document.lower()


def test_per_domain_keeps_the_first_questions_of_each_domain(tmp_path: Path) -> None:
    ref = ds.generate(["medical", "legal"], 200, 3, str(tmp_path / "two"))
    full = ds.load_qa(ref.uri, "test")
    sample = ds.load_qa(ref.uri, "test", per_domain=25)
    assert sample.groupby("domain").size().to_dict() == {"legal": 25, "medical": 25}
    heads = pd.concat(g.head(25) for _, g in full.groupby("domain", sort=False))
    pd.testing.assert_frame_equal(sample, heads.reset_index(drop=True))
    assert ds.load_qa(ref.uri, "test", per_domain=10**6).equals(full)
