"""The sidecar ``validation.json``: the gate's verdict on a dataset, and what later stages ask.

``validation.gate`` never rewrites a dataset's ``manifest.json`` (its digest must stay intact), so
it records each verdict in this sidecar next to it, keeping the history so that a rejection is
never erased; ``validation.acceptance.require_accepted(uri)`` reads it back against the
manifest's digest and today's suites before a stage touches the dataset.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from infra import storage

if TYPE_CHECKING:
    from validation.report import ValidationReport

SIDECAR = "validation.json"


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
