"""The consistency gate: Great Expectations suites derived from the world model.

from validation import validate, require_valid, require_accepted
report = require_valid(ref)          # raises DataQualityError listing failing checks
require_accepted(ref.uri)            # raises NotAccepted unless accepted for this digest and suite
"""

from validation.acceptance import (
    Acceptance,
    DatasetRejected,
    NotAccepted,
    require_accepted,
    validation_status,
)
from validation.gate import require_valid, validate
from validation.report import CheckResult, DataQualityError, ValidationReport
from validation.suites import DomainSuites, build_suite

__all__ = [
    "Acceptance",
    "CheckResult",
    "DataQualityError",
    "DatasetRejected",
    "DomainSuites",
    "NotAccepted",
    "ValidationReport",
    "build_suite",
    "require_accepted",
    "require_valid",
    "validate",
    "validation_status",
]
