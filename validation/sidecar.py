"""The sidecar ``validation.json``: the gate's verdict on a dataset, and what later stages ask.

``validation.gate`` never rewrites a dataset's ``manifest.json`` (its digest must stay intact), so
it records each verdict in this sidecar next to it, keeping the history so that a rejection is
never erased; ``validation_status(uri)`` reads it back against the manifest's digest before
training touches the dataset. Reading and writing the sidecar needs only storage and the
manifest, not Great Expectations, so it lives apart from the gate that runs the suites.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from infra import storage
from worldgen.dataset import read_manifest

if TYPE_CHECKING:
    from validation.report import ValidationReport

SIDECAR = "validation.json"
Status = Literal["accepted", "rejected", "unvalidated", "stale"]


def read_sidecar(uri: str) -> dict[str, Any] | None:
    path = storage.join(uri, SIDECAR)
    if not storage.exists(path):
        return None
    try:
        data: dict[str, Any] = json.loads(storage.read_bytes(path))
    except (json.JSONDecodeError, storage.StorageError):
        return None
    return data


def write_sidecar(report: ValidationReport, hashes: dict[str, str]) -> None:
    """Record the verdict. History is kept: an earlier rejection is never erased."""
    previous = read_sidecar(report.uri) or {}
    history = list(previous.get("history", []))
    entry = {
        "status": "accepted" if report.success else "rejected",
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "digest": report.digest,
        "suite_hash": report.suite_hash,
        "suite_hashes": hashes,
        "n_expectations": report.n_expectations,
        "rows": report.rows,
        "failing": len(report.failures),
        "unexpected": {r.check: r.unexpected_count for r in report.failures},
        "data_docs": report.data_docs,
    }
    history.append(entry)
    # A rejection stands for this digest and suite: the same suite cannot un-reject it.
    status = entry["status"]
    if any(
        h["status"] == "rejected"
        and h["digest"] == report.digest
        and h["suite_hash"] == report.suite_hash
        for h in history
    ):
        status = "rejected"
    body = {**entry, "status": status, "report": report.to_json(), "history": history}
    storage.write_bytes(
        storage.join(report.uri, SIDECAR),
        json.dumps(body, indent=2, sort_keys=True, default=str).encode(),
    )


def validation_status(uri: str) -> Status:
    """``accepted`` only when the sidecar accepts exactly this manifest's digest.

    ``rejected``: the gate rejected it; ``unvalidated``: no sidecar; ``stale``: the sidecar is
    for another digest. Training must refuse anything but ``accepted``.
    """
    side = read_sidecar(uri)
    if side is None:
        return "unvalidated"
    digest = read_manifest(uri).get("digest")
    if side.get("digest") != digest:
        return "stale"
    return "accepted" if side.get("status") == "accepted" else "rejected"
