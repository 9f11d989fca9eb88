"""Calendar arithmetic for limitation periods: the same calendar day some years later, on
whole columns of day numbers (sampling, invariants) and on one ISO date (answers)."""

from __future__ import annotations

import datetime as dt

import numpy as np


def _civil(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Day numbers to proleptic Gregorian (year, month, day); H. Hinnant's civil_from_days."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    return yoe + era * 400 + (month <= 2), month, day


def _day_number(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """(year, month, day) to day numbers; H. Hinnant's days_from_civil."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def filing_deadline(incident: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Day number of the same calendar day ``years`` later (29 Feb -> 28 Feb), vectorized."""
    year, month, day = _civil(np.asarray(incident, dtype=np.int64))
    target = year + np.asarray(years, dtype=np.int64)
    leap = (target % 4 == 0) & ((target % 100 != 0) | (target % 400 == 0))
    day = day - ((month == 2) & (day == 29) & ~leap)
    return _day_number(target, month, day)


def deadline_iso(incident_iso: str, years: int) -> str:
    """The same rule on one ISO date (for answers)."""
    d = dt.date.fromisoformat(incident_iso)
    try:
        return d.replace(year=d.year + years).isoformat()
    except ValueError:  # 29 February in a non-leap year
        return d.replace(year=d.year + years, day=28).isoformat()
