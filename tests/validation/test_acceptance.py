"""``require_accepted``: the one check before a dataset is trained or evaluated on.

Each way a dataset can lack a verdict that holds (never validated, changed since, judged by
other suites, rejected) is refused in one line naming the command that fixes it, locally, on
S3, and through ``veracity train`` / ``veracity evaluate``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from infra import storage
from infra.errors import ExitCode
from tests.conftest import accept
from validation import (
    DatasetRejected,
    NotAccepted,
    require_accepted,
    validate,
    validation_status,
)
from validation.sidecar import SIDECAR
from worldgen.dataset import generate, load_table, write_variant
from worldgen.integrity import DatasetTampered


@pytest.fixture(scope="module")
def accepted(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("acc")
    generate(["medical"], 60, 5, str(root / "ds"))
    return accept(str(root / "ds"), root / "home")


def _edit_sidecar(uri: str, **fields: object) -> None:
    path = storage.join(uri, SIDECAR)
    data = json.loads(storage.read_bytes(path))
    data.update(fields)
    storage.write_bytes(path, json.dumps(data).encode())


def _copy(uri: str, dest: str) -> str:
    for rel in storage.list_prefix(uri):
        storage.write_bytes(dest + rel[len(uri) :], storage.read_bytes(rel))
    return dest


def test_an_accepted_dataset_passes(accepted: str) -> None:
    verdict = require_accepted(accepted)
    assert verdict.digest and verdict.suite_hash and validation_status(accepted) == "accepted"


def test_a_never_validated_dataset_is_refused(tmp_path: Path) -> None:
    uri = str(tmp_path / "fresh")
    generate(["medical"], 40, 6, uri)
    with pytest.raises(NotAccepted, match=r"never validated: run `veracity validate .*fresh`"):
        require_accepted(uri)
    assert validation_status(uri) == "unvalidated"


def test_a_verdict_for_other_content_is_stale(accepted: str, tmp_path: Path) -> None:
    uri = _copy(accepted, str(tmp_path / "copy"))
    _edit_sidecar(uri, digest="0" * 64)
    with pytest.raises(NotAccepted, match="changed since it was validated"):
        require_accepted(uri)
    assert validation_status(uri) == "stale"


def test_a_verdict_of_other_suites_is_stale(accepted: str, tmp_path: Path) -> None:
    uri = _copy(accepted, str(tmp_path / "copy"))
    _edit_sidecar(uri, suite_hashes={"medical": "an-older-suite"})
    with pytest.raises(NotAccepted, match=r"other suites than today's \(medical\)"):
        require_accepted(uri)


def test_a_rejected_dataset_is_refused_with_its_exit_code(accepted: str, tmp_path: Path) -> None:
    records = load_table(accepted, "medical", "records")
    records.loc[[2], "dbp"] = records.loc[[2], "sbp"] + 1
    tables = {t: load_table(accepted, "medical", t) for t in ("documents", "qa")}
    tables["records"] = records
    uri = write_variant(accepted, "medical", tables, str(tmp_path / "bad"), {"edit": "dbp"}).uri
    validate(uri, docs=False)
    with pytest.raises(DatasetRejected, match="rejected by the validation gate") as err:
        require_accepted(uri)
    assert err.value.exit_code == ExitCode.REJECTED


def test_an_unvalidated_s3_dataset_is_refused_then_accepted(s3_bucket: str) -> None:
    uri = f"s3://{s3_bucket}/ds"
    generate(["medical"], 40, 8, uri)
    with pytest.raises(NotAccepted, match="never validated"):
        require_accepted(uri)
    refused = CliRunner().invoke(app, ["train", uri, "--max-steps", "1"])
    assert refused.exit_code == ExitCode.USAGE and "never validated" in refused.output
    validate(uri, docs=False)
    assert require_accepted(uri).digest
    _edit_sidecar(uri, digest="f" * 64)
    with pytest.raises(NotAccepted, match="changed since"):
        require_accepted(uri)


def test_train_and_evaluate_refuse_in_one_line(tmp_path: Path) -> None:
    uri = str(tmp_path / "fresh")
    generate(["medical"], 40, 6, uri)
    model = tmp_path / "model"  # what resolving a model folder looks for; never loaded here
    model.mkdir()
    for name in ("model.safetensors", "config.json"):
        (model / name).write_text("")
    runner = CliRunner()
    for args in (["train", uri, "--max-steps", "1"], ["evaluate", str(model), uri]):
        result = runner.invoke(app, args)
        assert result.exit_code == ExitCode.USAGE, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "veracity validate" in lines[0], result.output


def test_train_refuses_a_stale_sidecar(accepted: str, tmp_path: Path) -> None:
    uri = _copy(accepted, str(tmp_path / "copy"))
    _edit_sidecar(uri, digest="1" * 64)
    result = CliRunner().invoke(app, ["train", uri, "--max-steps", "1"])
    assert result.exit_code == ExitCode.USAGE
    assert result.output.count("\n") == 1 and "changed since it was validated" in result.output


def _poison_qa(uri: str) -> None:
    """Flip yes/no answers in the QA shard and rewrite its sha256 in the manifest to match:
    what someone with write access to the folder can do without running the generator."""
    manifest = json.loads(storage.read_bytes(storage.join(uri, "manifest.json")))
    rel = next(r for r in manifest["files"] if r.startswith("medical/qa/"))
    qa = load_table(uri, "medical", "qa")
    qa["answer"] = qa["answer"].replace({"yes": "no", "no": "yes"})
    data = storage.write_parquet(storage.join(uri, rel), qa)
    manifest["files"][rel]["sha256"] = hashlib.sha256(data).hexdigest()
    storage.write_bytes(storage.join(uri, "manifest.json"), json.dumps(manifest).encode())


def test_poisoned_qa_with_a_rehashed_shard_is_refused(accepted: str, tmp_path: Path) -> None:
    uri = _copy(accepted, str(tmp_path / "poisoned"))
    _poison_qa(uri)
    with pytest.raises(DatasetTampered, match="differ from the content its digest covers"):
        require_accepted(uri)
    result = CliRunner().invoke(app, ["train", uri, "--max-steps", "1"])
    assert result.exit_code == ExitCode.USAGE and "digest covers" in result.output
    report = validate(uri, docs=False)  # and the gate names it, beside the wrong answers
    assert not report.success and "content_digest" in {r.check for r in report.failures}


def test_a_hand_edited_manifest_is_refused(accepted: str, tmp_path: Path) -> None:
    uri = _copy(accepted, str(tmp_path / "edited"))
    manifest = json.loads(storage.read_bytes(storage.join(uri, "manifest.json")))
    manifest.update(seed=manifest["seed"] + 1, n_per_domain=manifest["n_per_domain"] * 2)
    storage.write_bytes(storage.join(uri, "manifest.json"), json.dumps(manifest).encode())
    with pytest.raises(DatasetTampered, match="fields do not hash to its digest"):
        require_accepted(uri)
    report = validate(uri, docs=False)
    assert not report.success and "content_digest" in {r.check for r in report.failures}
