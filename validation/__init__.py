"""The consistency gate: Great Expectations suites derived from the world model.

from validation import validate, require_valid, validation_status
report = require_valid(ref)          # raises DataQualityError listing failing checks
validation_status(ref.uri)           # "accepted" | "rejected" | "unvalidated" | "stale"
"""

from validation.gate import require_valid, validate
from validation.report import CheckResult, DataQualityError, ValidationReport
from validation.sidecar import validation_status
from validation.suites import DomainSuites, build_suite

__all__ = [
    "CheckResult",
    "DataQualityError",
    "DomainSuites",
    "ValidationReport",
    "build_suite",
    "require_valid",
    "validate",
    "validation_status",
]
