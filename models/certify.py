"""Certification writes a new served folder; a trained model's folder is never modified.

Training writes ``<run>/model`` once, and Prefect caches it by its inputs. The evaluation then
chooses the abstention threshold the gate's figures are computed with; the served model must
abstain exactly so. :func:`certify` copies the trained weights and JSON into a new folder,
``<run>/served/<id>``, writes that folder's own ``routing.json`` with the threshold, and a
``certificate.json`` naming the evidence (evaluation report digest, dataset digest, split) and
the sha256 of every file. The same certification finds its folder again and checks it; a folder
whose files no longer match their certificate is refused, never served.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from infra.errors import TamperedError

CERTIFICATE = "certificate.json"
ROUTING = "routing.json"


class CertificateMismatch(TamperedError):
    """A served folder's files differ from what its certificate records."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: _sha256(p) for p in sorted(folder.iterdir()) if p.name != CERTIFICATE}


def check_certificate(served: Path) -> dict[str, Any]:
    """The certificate of ``served``, once every file is what it records."""
    cert: dict[str, Any] = json.loads((served / CERTIFICATE).read_text())
    if _hashes(served) != cert["files"]:
        raise CertificateMismatch(
            f"{served} does not match its certificate (a file was changed, added or removed); "
            "certify the trained model again into a new folder"
        )
    return cert


def certify(model_dir: str | Path, abstain_threshold: float, evidence: dict[str, Any]) -> Path:
    """The served folder for ``model_dir`` with ``abstain_threshold`` fixed, on ``evidence``
    (what the threshold was chosen on: report digest, dataset digest, split)."""
    trained = Path(model_dir)
    claim = {"abstain_threshold": abstain_threshold, "evidence": evidence}
    key = hashlib.sha256(json.dumps(claim, sort_keys=True).encode()).hexdigest()[:16]
    served = trained.parent / "served" / key
    if (served / CERTIFICATE).exists():
        check_certificate(served)  # a retry finds its own folder, intact
        return served
    staging = served.with_name(f".{key}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(trained, staging)  # copies: nothing served is editable through the run
    routing = json.loads((staging / ROUTING).read_text())
    routing["abstain_threshold"] = abstain_threshold
    (staging / ROUTING).write_text(json.dumps(routing, indent=2))
    cert = {**claim, "trained_from": str(trained), "files": _hashes(staging)}
    (staging / CERTIFICATE).write_text(json.dumps(cert, indent=2, sort_keys=True))
    staging.rename(served)  # whole or not at all
    return served
