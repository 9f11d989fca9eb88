"""Certification writes a new served folder; a trained model's folder is never modified.

Training writes ``<run>/model`` once, and Prefect caches it by its inputs. The evaluation then
chooses the abstention threshold the gate's figures are computed with; the served model must
abstain exactly so. :func:`certify` copies the trained weights and JSON into a new folder,
``<run>/served/<id>``, writes that folder's own ``routing.json`` with the threshold, and a
``certificate.json`` naming the claim (threshold, evidence: evaluation report digest, dataset
digest, split; the sha256 of every trained file) and the sha256 of every served file. ``<id>``
is a hash of the claim, so the same certification finds its folder again and checks it; a
folder whose files no longer match their certificate is refused, never served or reused.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

from infra.errors import TamperedError

CERTIFICATE = "certificate.json"
ROUTING = "routing.json"
# what routing.json holds of the abstention policy, each certified (models.abstain)
POLICY = ("abstain_threshold", "abstain_score", "risk", "novelty_limit")
SERVED = "served"  # beside the run's model/ folder: <run>/served/<id>


class CertificateMismatch(TamperedError):
    """A served folder's files differ from what its certificate records."""


def _sha256(path: Path) -> str:
    with path.open("rb") as f:  # streamed: a GPU-sized model need not fit in memory twice
        return hashlib.file_digest(f, "sha256").hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    """The sha256 of every file under ``folder`` by its relative path, the certificate aside."""
    found = (p for p in sorted(folder.rglob("*")) if p.is_file())
    return {p.relative_to(folder).as_posix(): _sha256(p) for p in found if p.name != CERTIFICATE}


def _mismatch(served: Path, what: str) -> CertificateMismatch:
    return CertificateMismatch(
        f"{served} does not match its certificate ({what}); "
        "remove it and certify the trained model again"
    )


def check_certificate(served: str | Path) -> dict[str, Any]:
    """The certificate of ``served``, once every file is what it records, its routing.json
    abstains at the certified threshold and every trained file was served unchanged."""
    folder = Path(served)
    if not (folder / CERTIFICATE).is_file():
        raise _mismatch(folder, "there is no certificate.json")
    cert: dict[str, Any] = json.loads((folder / CERTIFICATE).read_text())
    files = file_hashes(folder)
    if files != cert.get("files"):
        raise _mismatch(folder, "a file was changed, added or removed")
    routing = json.loads((folder / ROUTING).read_text())
    if any(routing.get(k) != cert.get(k) for k in POLICY):
        raise _mismatch(folder, "routing.json abstains otherwise than certified")
    trained = cert.get("trained_files", {})
    if any(files.get(name) != digest for name, digest in trained.items() if name != ROUTING):
        raise _mismatch(folder, "a served file is not the trained one")
    return cert


def served_dir(model_dir: str | Path, claim: dict[str, Any]) -> Path:
    key = hashlib.sha256(json.dumps(claim, sort_keys=True).encode()).hexdigest()[:16]
    return Path(model_dir).parent / SERVED / key


def certify(
    model_dir: str | Path,
    abstain_threshold: float,
    evidence: dict[str, Any],
    score: str = "estimator",
    risk: dict[str, Any] | None = None,
    novelty_limit: float | None = None,
) -> Path:
    """The served folder for ``model_dir`` abstaining when ``score`` is over
    ``abstain_threshold``, on ``evidence`` (what the threshold was chosen on: report digest,
    dataset digest, split) and with ``risk``, the guarantee it was chosen for, reaching
    questions no more novel than ``novelty_limit``. Nothing under
    ``model_dir`` is written. Certifying again with the same claim returns the same folder,
    checked; a folder that no longer matches its certificate raises CertificateMismatch."""
    if math.isnan(abstain_threshold):
        raise ValueError("cannot certify a NaN abstention threshold")
    trained = Path(model_dir)
    claim = {
        "abstain_threshold": float(abstain_threshold),
        "abstain_score": score,
        "risk": risk or {},
        "novelty_limit": novelty_limit,
        "evidence": evidence,
        "trained_files": file_hashes(trained),  # retrained weights are another claim
    }
    claim = json.loads(json.dumps(claim))  # as the certificate will read it back
    served = served_dir(trained, claim)
    if not served.exists():
        _write(trained, served, claim)
    cert = check_certificate(served)
    if {k: cert.get(k) for k in claim} != claim:
        raise _mismatch(served, "it certifies another claim")
    return served


def _write(trained: Path, served: Path, claim: dict[str, Any]) -> None:
    served.parent.mkdir(parents=True, exist_ok=True)
    # a staging folder of its own: two certifications of one claim at once (a retry beside a
    # late first try) never write into each other's files; the rename publishes it whole
    staging = Path(tempfile.mkdtemp(prefix=f".{served.name}.", dir=served.parent))
    try:
        # copies, not links: nothing served is editable through the training run, or back
        shutil.copytree(trained, staging, dirs_exist_ok=True)
        routing = json.loads((staging / ROUTING).read_text())
        routing.update({k: claim[k] for k in POLICY})
        (staging / ROUTING).write_text(json.dumps(routing, indent=2))
        cert = {**claim, "trained_from": str(trained.resolve()), "files": file_hashes(staging)}
        (staging / CERTIFICATE).write_text(json.dumps(cert, indent=2, sort_keys=True))
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the model from a server's user
        staging.rename(served)
    except OSError:
        if not served.exists():
            raise
        # the other certification of this claim published first; the caller checks its folder
    finally:
        shutil.rmtree(staging, ignore_errors=True)
