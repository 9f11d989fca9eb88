"""What the gate found: one ``CheckResult`` per expectation and batch, gathered in a
``ValidationReport`` (its one-screen summary, its JSON for the sidecar and MLflow), and the
``DataQualityError`` that stops a pipeline on a failing dataset."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from infra.errors import RejectedError


class DataQualityError(RejectedError, RuntimeError):
    """A dataset failed the gate; ``report`` holds every result, the message a summary."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.summary())
        self.report = report


@dataclass(frozen=True)
class CheckResult:
    """One expectation (or structural check) on one batch of one domain."""

    domain: str
    batch: str  # records | records_sql | documents | qa | files
    check: str  # invariant name, ``domain:<col>``, ``type:<col>``, ``schema:...``, ...
    expectation: str  # the GX expectation type, or ``structural``
    columns: tuple[str, ...]
    success: bool
    unexpected_count: int = 0
    record_ids: tuple[int, ...] = ()
    error: str = ""

    def line(self, few: int = 5) -> str:
        where = f"{self.domain}.{self.batch}"
        cols = f"({', '.join(self.columns)})" if self.columns else ""
        head = f"{where} {self.check}: {self.expectation}{cols}"
        if self.error:
            return f"{head}: ERROR {self.error}"
        ids = ", ".join(map(str, self.record_ids[:few]))
        more = f" (+{len(self.record_ids) - few} more)" if len(self.record_ids) > few else ""
        return (
            f"{head}: {self.unexpected_count} unexpected rows ({len(self.record_ids)} records)"
            + (f", record ids {ids}{more}" if ids else "")
        )


@dataclass
class ValidationReport:
    uri: str
    digest: str
    success: bool
    suite_hash: str
    results: list[CheckResult]
    data_docs: str
    n_expectations: int
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success]

    @property
    def unexpected_ids(self) -> dict[str, set[int]]:
        """Per domain, the union of unexpected record ids over every failing expectation."""
        out: dict[str, set[int]] = {}
        for r in self.failures:
            out.setdefault(r.domain, set()).update(r.record_ids)
        return out

    def summary(self, limit: int = 15) -> str:
        verdict = "PASSED" if self.success else "FAILED"
        lines = [
            f"validation {verdict}: {self.uri} "
            f"(digest {self.digest[:12]}, suite {self.suite_hash[:12]})",
            f"{self.n_expectations} expectations over "
            + (", ".join(f"{k} {v:,}" for k, v in self.rows.items()) or "no readable")
            + f" rows in {self.seconds:.1f}s; {len(self.failures)} failing",
        ]
        for r in self.failures[:limit]:
            lines.append(f"  - {r.line()}")
        if len(self.failures) > limit:
            lines.append(f"  ... and {len(self.failures) - limit} more failing checks")
        lines.append(f"Data Docs: {self.data_docs}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "digest": self.digest,
            "success": self.success,
            "suite_hash": self.suite_hash,
            "n_expectations": self.n_expectations,
            "rows": self.rows,
            "data_docs": self.data_docs,
            "seconds": round(self.seconds, 3),
            "failures": [
                {**asdict(r), "record_ids": list(r.record_ids[:20])} for r in self.failures
            ],
        }
