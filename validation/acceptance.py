"""``require_accepted(uri)``: the one check that a dataset may be trained or evaluated on.

A dataset is accepted when its sidecar holds an ``accepted`` verdict for exactly the digest its
manifest has now and for exactly the suites the world model derives now. Anything else (never
validated, changed since, validated by older suites, rejected) is refused with the command
that fixes it. The flow, ``veracity train`` and ``veracity evaluate`` call this and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from infra.errors import RejectedError, UserError
from validation.gate import suites_for
from validation.sidecar import read_sidecar
from worldgen.dataset import read_manifest
from worldgen.integrity import verify_dataset

Status = Literal["accepted", "rejected", "unvalidated", "stale"]


class NotAccepted(UserError):
    """The dataset has no verdict that holds for its content and today's suites."""


class DatasetRejected(NotAccepted, RejectedError):
    """The gate rejected the dataset: no later verdict of the same suites can lift that."""


@dataclass(frozen=True)
class Acceptance:
    """What a stage records about the verdict it relied on (MLflow tags, lineage)."""

    uri: str
    digest: str
    suite_hash: str
    data_docs: str
    checked_at: str

    def as_tags(self) -> dict[str, Any]:
        return {
            "status": "accepted",
            "suite_hash": self.suite_hash,
            "result_id": f"{self.digest[:12]}-{self.suite_hash[:12]}",
            "data_docs": self.data_docs,
            "success": True,
        }


def current_suite_hashes(domains: list[str]) -> dict[str, str]:
    """The hash of each domain's suites as the world model derives them today."""
    return {d: suites_for(d).suite_hash for d in domains}


def _stale_suites(verdict: dict[str, Any], domains: list[str]) -> list[str]:
    """Domains whose suites today differ from the ones that gave the verdict."""
    recorded, today = verdict.get("suite_hashes") or {}, current_suite_hashes(domains)
    return [d for d in domains if recorded.get(d) != today[d]]


def require_accepted(uri: str) -> Acceptance:
    """The verdict that lets ``uri`` be used, or :class:`NotAccepted` saying how to get one.

    Every file and field is re-hashed first (``DatasetTampered`` when they do not make the
    digest the manifest states), so the verdict found is for the bytes about to be read."""
    digest = verify_dataset(uri)  # what is read is re-hashed: a verdict binds to content
    manifest = read_manifest(uri)
    verdict = read_sidecar(uri)
    again = f"run `veracity validate {uri}`"
    if verdict is None:
        raise NotAccepted(f"{uri} was never validated: {again} before using it")
    if verdict.get("digest") != digest:
        raise NotAccepted(
            f"{uri} changed since it was validated (digest {digest[:12]}, verdict for "
            f"{str(verdict.get('digest'))[:12]}): {again}"
        )
    if verdict.get("status") == "rejected":
        raise DatasetRejected(
            f"{uri} was rejected by the validation gate ({verdict.get('failing', '?')} failing "
            f"checks, Data Docs {verdict.get('data_docs', '-')}): fix the data or generate it "
            "again with `veracity generate`"
        )
    stale = _stale_suites(verdict, list(manifest["domains"]))
    if verdict.get("status") != "accepted" or stale:
        raise NotAccepted(
            f"{uri} was validated by other suites than today's ({', '.join(stale) or 'all'}): "
            f"{again}"
        )
    return Acceptance(
        uri,
        digest,
        str(verdict.get("suite_hash", "")),
        str(verdict.get("data_docs", "")),
        str(verdict.get("checked_at", "")),
    )


def verdict(uri: str) -> tuple[Status, Acceptance | None]:
    """``require_accepted`` as a word, with the acceptance when there is one: ``accepted``,
    ``rejected``, ``unvalidated`` (no verdict) or ``stale`` (for other content or suites)."""
    try:
        return "accepted", require_accepted(uri)
    except DatasetRejected:
        return "rejected", None
    except NotAccepted:
        return ("unvalidated" if read_sidecar(uri) is None else "stale"), None


def validation_status(uri: str) -> Status:
    return verdict(uri)[0]
