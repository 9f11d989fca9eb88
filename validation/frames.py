"""The frames the suites run on: records with their helper columns, documents and QA joined to
their records, and the columns the SQL rules read. Built per batch by the gate (and the
validation benchmark), apart from the suites themselves, which are built once per domain."""

from __future__ import annotations

import contextlib

import pandas as pd

from validation.expectations import FOUND
from validation.suites import DomainSuites
from worldgen.spec import WorldSpec


def records_frame(ds: DomainSuites, records: pd.DataFrame) -> pd.DataFrame:
    """The records with the helper columns; a default RangeIndex (pair expectations need it)."""
    frame = records.reset_index(drop=True)
    extra: dict[str, pd.Series] = {}
    for name in frame.columns:
        # GX compares datetime64[ns] vectorised, other units one Python call per value.
        if frame[name].dtype.kind == "M" and frame[name].dtype != "datetime64[ns]":
            # Out of the ns range: keep it, slow but exact.
            with contextlib.suppress(OverflowError, ValueError):
                extra[name] = frame[name].astype("datetime64[ns]")
    for h in ds.helpers:
        if h.source in frame:
            extra[h.name] = frame[h.source] * h.factor
    return frame.assign(**extra) if extra else frame


def _join_records(left: pd.DataFrame, spec: WorldSpec, records: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in spec.columns if c in records.columns]
    right = records[cols].drop_duplicates(spec.ids.record)
    if spec.ids.record != "record_id":
        right = right.rename(columns={spec.ids.record: "record_id"})
    left = left.drop(
        columns=[c for c in right.columns if c != "record_id" and c in left], errors="ignore"
    )
    joined = left.merge(right, on="record_id", how="left", indicator=FOUND)
    joined[FOUND] = (joined[FOUND] == "both").to_numpy()
    if not joined[FOUND].all():
        # Unmatched rows turned integer columns to float; restore them for exact re-rendering.
        for col in cols:
            kind = records[col].dtype.kind
            if kind in "iu":
                joined[col] = joined[col].astype("Int64")
            elif kind == "b":
                joined[col] = joined[col].astype("boolean")
    return joined.reset_index(drop=True)


def documents_frame(
    spec: WorldSpec, documents: pd.DataFrame, records: pd.DataFrame
) -> pd.DataFrame:
    return _join_records(documents, spec, records)


def qa_frame(
    spec: WorldSpec, qa: pd.DataFrame, documents: pd.DataFrame, records: pd.DataFrame
) -> pd.DataFrame:
    plans = documents[["record_id", "plan"]].drop_duplicates("record_id")
    left = qa.drop(columns=["plan"], errors="ignore").merge(plans, on="record_id", how="left")
    return _join_records(left, spec, records)


def sql_frame(ds: DomainSuites, records: pd.DataFrame) -> pd.DataFrame:
    """The columns SQL rules read; categories as text, dates as ISO text."""
    out = {}
    for col in ds.sql_columns:
        series = records[col]
        if isinstance(series.dtype, pd.CategoricalDtype) or series.dtype == object:
            out[col] = series.astype(str)
        elif series.dtype.kind == "M":
            out[col] = series.dt.strftime("%Y-%m-%d")
        else:
            out[col] = series
    return pd.DataFrame(out)
