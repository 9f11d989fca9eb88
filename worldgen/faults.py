"""Fault injection: break one invariant the way real data goes wrong, and say exactly where.

A ``FaultMode`` corrupts chosen rows of a domain's tables in place and returns the record ids it
touched; ``breaks`` names the invariants (or render checks) those rows now violate, so tests and
the validation gate can demand exact detection (precision = recall = 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

Tables = dict[str, pd.DataFrame]  # "records", "documents", "qa"
Apply = Callable[[Tables, np.random.Generator, int], np.ndarray]

# Render-level checks (not spec invariants) that faults may break.
DOCUMENT_CHECK = "document_matches_record"
ANSWER_CHECK = "answer_matches_record"


@dataclass(frozen=True)
class FaultMode:
    name: str
    description: str
    breaks: tuple[str, ...]
    apply: Apply


def pick(rng: np.random.Generator, candidates: np.ndarray, n: int) -> np.ndarray:
    """``n`` distinct row positions among ``candidates`` (a boolean mask or positions)."""
    positions = np.flatnonzero(candidates) if candidates.dtype == bool else candidates
    if len(positions) < n:
        raise ValueError(f"only {len(positions)} rows can take this fault, {n} asked")
    return np.sort(rng.choice(positions, size=n, replace=False))


def set_values(frame: pd.DataFrame, name: str, rows: np.ndarray, values: object) -> None:
    """Set one column's values at row positions (on a copy: frames read from parquet may be
    read-only), then put the column back."""
    column = frame[name].copy(deep=True)
    column.iloc[rows] = values
    frame[name] = column


def is_label(frame: pd.DataFrame, name: str, label: str) -> np.ndarray:
    return (frame[name] == label).to_numpy()


def record_ids(frame: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    return np.asarray(frame["record_id"].to_numpy()[rows], dtype=np.int64)


def _wrong_answer(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    qa = t["qa"]
    rows = pick(rng, (qa["answer"] != "unknown").to_numpy(), n)
    # Another answer to the same question key keeps the corruption plausible.
    answers = qa["answer"].to_numpy().copy()
    for r in rows:
        same_key = qa["answer"][(qa["key"] == qa["key"].iat[r]) & (qa["answer"] != answers[r])]
        answers[r] = same_key.iat[0] if len(same_key) else answers[r] + "0"
    t["qa"] = qa.assign(answer=answers)
    return np.unique(record_ids(qa, rows))


def _sentence_digit_changed(t: Tables, rng: np.random.Generator, n: int) -> np.ndarray:
    docs = t["documents"]
    has_digit = docs["document"].str.contains(r"\d", regex=True).to_numpy()
    rows = pick(rng, has_digit, n)
    text = docs["document"].to_numpy().copy()
    for r in rows:
        digits = [i for i, ch in enumerate(text[r]) if ch.isdigit()]
        i = digits[int(rng.integers(len(digits)))]
        text[r] = (
            text[r][:i] + str((int(text[r][i]) + 1 + int(rng.integers(8))) % 10) + text[r][i + 1 :]
        )
    t["documents"] = docs.assign(document=text)
    return record_ids(docs, rows)


COMMON_FAULTS = (
    FaultMode(
        "qa_answer_wrong", "a QA answer disagrees with its record", (ANSWER_CHECK,), _wrong_answer
    ),
    FaultMode(
        "document_sentence_wrong",
        "one digit in a document sentence disagrees with its record",
        (DOCUMENT_CHECK,),
        _sentence_digit_changed,
    ),
)
