"""Certification: a new served folder with the threshold; the trained folder is never written.

On an untrained tiny model exported as training exports one (seconds, no dataset): what is
checked here is the folder, not the model's skill. ``tests/models/test_evaluate.py`` certifies
a trained one and evaluates the served folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from models.answer import NEVER_ABSTAIN, UNKNOWN, Answerer, stored_abstain_threshold
from models.apr import APRTransformer
from models.certify import CERTIFICATE, SERVED, CertificateMismatch, certify, file_hashes
from models.checkpoint import export
from models.config import APRConfig, TrainConfig
from models.tokenizer import Tokenizer

DOCUMENT = "Sex: female. Age: 42."
QUESTION = "What is the patient's sex?"
EVIDENCE = {"report_digest": "r1", "dataset_digest": "d1", "split": "test"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tok = Tokenizer.fit([DOCUMENT, QUESTION])
    model = APRTransformer(APRConfig.from_name("tiny", vocab_size=len(tok.vocab)))
    run = tmp_path_factory.mktemp("exported") / "run"
    return export(model, tok, run / "model", 0.5, "file:///d", "d1", TrainConfig())


@pytest.fixture
def trained(exported: Path, tmp_path: Path) -> Path:
    """A training run's model folder of this test's own, as training left it."""
    return Path(shutil.copytree(exported, tmp_path / "run" / "model"))


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_certifying_leaves_the_trained_folder_byte_identical(trained: Path) -> None:
    before = _tree(trained)
    stats = {p.name: p.stat().st_mtime_ns for p in trained.iterdir()}
    served = certify(trained, 0.25, EVIDENCE)
    assert _tree(trained) == before  # the same files, byte for byte: none added or removed
    assert {p.name: p.stat().st_mtime_ns for p in trained.iterdir()} == stats
    assert stored_abstain_threshold(trained) is None
    assert Answerer.load(trained).abstain_threshold == NEVER_ABSTAIN
    assert served.parent == trained.parent / SERVED  # beside model/, never inside it
    # the weights are copies: writing one folder's file can never change the other's
    for name in ("model.safetensors", "config.json", "tokenizer.json", "lineage.json"):
        assert (served / name).read_bytes() == (trained / name).read_bytes()
        assert not (served / name).samefile(trained / name)
        assert (served / name).stat().st_nlink == 1


def test_the_served_folder_carries_the_threshold_and_answers_with_it(trained: Path) -> None:
    served = certify(trained, 0.25, EVIDENCE)
    routing = json.loads((served / "routing.json").read_text())
    trained_routing = json.loads((trained / "routing.json").read_text())
    policy = {
        "abstain_threshold": 0.25,
        "abstain_score": "estimator",
        "risk": {},
        "novelty_limit": None,
    }
    assert routing == {**trained_routing, **policy}
    answerer = Answerer.load(served)
    assert answerer.abstain_threshold == 0.25
    a = answerer(DOCUMENT, QUESTION)
    assert a.abstained == (a.uncertainty > 0.25 and a.raw != UNKNOWN)
    cert = json.loads((served / CERTIFICATE).read_text())
    assert cert["abstain_threshold"] == 0.25 and cert["evidence"] == EVIDENCE
    assert cert["trained_from"] == str(trained.resolve())
    assert cert["trained_files"] == file_hashes(trained)
    files = {p.name for p in served.iterdir()} - {CERTIFICATE}
    assert set(cert["files"]) == files
    for name in files:
        assert cert["files"][name] == hashlib.sha256((served / name).read_bytes()).hexdigest()


def test_certifying_again_reuses_the_same_folder_and_another_claim_gets_its_own(
    trained: Path,
) -> None:
    served = certify(trained, 0.25, EVIDENCE)
    written = (served / CERTIFICATE).stat().st_mtime_ns
    assert certify(str(trained), 0.25, dict(EVIDENCE)) == served  # a Prefect retry finds it
    assert (served / CERTIFICATE).stat().st_mtime_ns == written  # ... checked, not rewritten
    others = {
        certify(trained, 0.5, EVIDENCE),
        certify(trained, 0.25, {**EVIDENCE, "report_digest": "r2"}),
    }
    (trained / "model.safetensors").write_bytes(b"retrained")  # a new training run's weights
    others.add(certify(trained, 0.25, EVIDENCE))
    assert served not in others and len(others) == 3
    names = {p.name for p in (trained.parent / SERVED).iterdir()}
    assert len(names) == 4 and not any(n.startswith(".") for n in names)  # no staging left


def _edit_routing(served: Path) -> None:
    (served / "routing.json").write_text('{"abstain_threshold": 0.9}')


def _edit_weights(served: Path) -> None:
    data = bytearray((served / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (served / "model.safetensors").write_bytes(bytes(data))


def _add_file(served: Path) -> None:
    (served / "extra.json").write_text("{}")


def _remove_lineage(served: Path) -> None:
    (served / "lineage.json").unlink()


def _remove_certificate(served: Path) -> None:
    (served / CERTIFICATE).unlink()


def _forge_certificate(served: Path) -> None:
    """Another threshold, with every hash recomputed: consistent, but not this claim."""
    routing = json.loads((served / "routing.json").read_text())
    (served / "routing.json").write_text(json.dumps({**routing, "abstain_threshold": 0.9}))
    cert = json.loads((served / CERTIFICATE).read_text())
    cert.update(abstain_threshold=0.9, files=file_hashes(served))
    (served / CERTIFICATE).write_text(json.dumps(cert))


@pytest.mark.parametrize(
    "tamper",
    [
        _edit_routing,
        _edit_weights,
        _add_file,
        _remove_lineage,
        _remove_certificate,
        _forge_certificate,
    ],
)
def test_a_tampered_served_folder_is_refused(trained: Path, tamper: Callable[[Path], None]) -> None:
    served = certify(trained, 0.25, EVIDENCE)
    tamper(served)
    with pytest.raises(CertificateMismatch, match="does not match its certificate"):
        certify(trained, 0.25, EVIDENCE)
    # nor evaluated nor served (the pyfunc loads through Answerer.load) while a certificate says
    # otherwise. A folder without one loads as models registered before certification did, and
    # a forgery consistent in itself as what it says: the certificate is a check, not a signature
    if tamper not in (_remove_certificate, _forge_certificate):
        with pytest.raises(CertificateMismatch):
            Answerer.load(served)


def test_a_nan_threshold_is_not_certified(trained: Path) -> None:
    with pytest.raises(ValueError, match="NaN"):
        certify(trained, float("nan"), EVIDENCE)
    assert not (trained.parent / SERVED).exists()
