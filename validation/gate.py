"""The consistency gate: no dataset reaches training unless every expectation holds.

``validate(ref)`` runs every domain's suites (``validation.suites``) over the dataset, builds
Data Docs under the home directory and records the verdict in a sidecar ``validation.json``
next to ``manifest.json`` (which is never rewritten, so the dataset digest stays intact).
A rejected dataset is kept with its evidence; ``require_accepted(uri)``
(``validation.acceptance``) is what later stages ask before they read a dataset.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable
from typing import Any

import great_expectations as gx
import pandas as pd
import sqlalchemy as sa

from infra import storage
from validation import context as gxctx
from validation.frames import documents_frame, qa_frame, records_frame, sql_frame
from validation.report import CheckResult, DataQualityError, ValidationReport
from validation.sidecar import write_sidecar
from validation.structural import digest_checks, phrasing_checks, split_checks
from validation.suites import DomainSuites, build_suite
from worldgen.dataset import TABLES, DatasetError, DatasetRef, read_manifest
from worldgen.domains import get_domain

RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": ["record_id"],
}


# --- suites and data -----------------------------------------------------------------------


def suites_for(domain: str) -> DomainSuites:
    """The domain's suites, built from its spec once per context (suites bind to a context)."""
    gxctx.get_context()
    key = f"suites:{domain}"
    ds = gxctx.cached(key)
    if ds is None:
        dom = get_domain(domain)
        ds = build_suite(dom.spec, dom.renderer)
        gxctx.remember(key, ds)
    return ds


def _read_shards(
    uri: str, manifest: dict[str, Any], domain: str, table: str, structural: list[CheckResult]
) -> pd.DataFrame | None:
    rels = sorted(rel for rel in manifest["files"] if rel.startswith(f"{domain}/{table}/"))
    if not rels:
        structural.append(
            CheckResult(
                domain,
                "files",
                f"missing:{table}",
                "structural",
                (),
                False,
                error=f"no {table} files for {domain}",
            )
        )
        return None
    parts = []
    for rel in rels:
        try:
            data = storage.read_bytes(storage.join(uri, rel))
        except storage.StorageError as exc:
            structural.append(
                CheckResult(
                    domain,
                    "files",
                    f"missing:{rel}",
                    "structural",
                    (),
                    False,
                    error=f"shard {rel} cannot be read: {exc}",
                )
            )
            continue
        actual = hashlib.sha256(data).hexdigest()
        if actual != manifest["files"][rel]["sha256"]:
            structural.append(
                CheckResult(
                    domain,
                    "files",
                    f"modified:{rel}",
                    "structural",
                    (),
                    False,
                    error=f"shard {rel} was modified after it was "
                    "written (sha256 differs from the manifest)",
                )
            )
            continue
        frame = storage.parquet_from_bytes(data).to_pandas()
        if len(frame) == 0:
            structural.append(
                CheckResult(
                    domain,
                    "files",
                    f"empty:{rel}",
                    "structural",
                    (),
                    False,
                    error=f"empty shard {rel} (0 rows)",
                )
            )
            continue
        parts.append(frame)
    if not parts:
        return None
    return pd.concat(parts, ignore_index=True)


def _ids(values: Iterable[Any]) -> tuple[int, ...]:
    out = set()
    for v in values:
        if isinstance(v, dict):
            v = v.get("record_id")
        elif isinstance(v, list | tuple):
            v = v[0] if v else None
        if v is None or (isinstance(v, float) and v != v):
            continue
        out.add(int(v))
    return tuple(sorted(out))


def _check_results(domain: str, batch: str, gx_result: Any) -> list[CheckResult]:
    out = []
    for r in gx_result.results:
        config = r.expectation_config
        kwargs = config.kwargs
        meta = config.meta or {}
        cols = tuple(
            str(c)
            for c in (
                [kwargs["column"]]
                if "column" in kwargs
                else [kwargs["column_A"], kwargs["column_B"]]
                if "column_A" in kwargs
                else kwargs.get("column_list") or []
            )
        )
        if len(cols) > 6:
            cols = (*cols[:4], f"... {len(cols) - 4} more")
        info = r.exception_info or {}
        raised = bool(info.get("raised_exception"))
        error = ""
        if raised:
            error = str(info.get("exception_message") or "exception").splitlines()[0][:300]
        result = r.result or {}
        ids: tuple[int, ...] = ()
        count = 0
        if "unexpected_index_list" in result:
            ids = _ids(result.get("unexpected_index_list") or [])
            count = int(result.get("unexpected_count") or 0)
        elif config.type == "unexpected_rows_expectation":
            ids = _ids((result.get("details") or {}).get("unexpected_rows") or [])
            count = int(result.get("observed_value") or 0)
        elif not r.success and not raised:
            observed = result.get("observed_value")
            details = result.get("details")
            error = f"observed {observed!r}" + (f" {details}" if details else "")
            error = error[:300]
        out.append(
            CheckResult(
                domain,
                batch,
                str(meta.get("check", config.type)),
                config.type,
                cols,
                bool(r.success) and not raised,
                count,
                ids,
                error,
            )
        )
    return out


def _run(
    ds: DomainSuites, batch: str, frame: pd.DataFrame | None, sqlite: str | None = None
) -> Any:
    ctx = gxctx.get_context()

    name = f"veracity.{ds.domain}.{batch}"
    suite = ctx.suites.add_or_update(ds.suites[batch])
    if sqlite is None:
        source = ctx.data_sources.add_or_update_pandas("veracity_pandas")
        try:
            asset = source.get_asset(name)
        except LookupError:
            asset = source.add_dataframe_asset(name)
        try:
            bd = asset.get_batch_definition("whole")
        except (KeyError, LookupError):
            bd = asset.add_batch_definition_whole_dataframe("whole")
        params: dict[str, Any] | None = {"dataframe": frame}
    else:
        source = ctx.data_sources.add_or_update_sqlite(
            f"veracity_sqlite_{ds.domain}", connection_string=f"sqlite:///{sqlite}"
        )
        asset = source.add_table_asset("records", table_name="records")
        bd = asset.add_batch_definition_whole_table("whole")
        params = None
    vd = ctx.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=name, data=bd, suite=suite)
    )
    return vd.run(batch_parameters=params, result_format=RESULT_FORMAT)


def _write_sqlite(ds: DomainSuites, records: pd.DataFrame) -> str:

    folder = gxctx.gx_root() / "uncommitted" / "sql"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ds.domain}-{uuid.uuid4().hex[:12]}.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        sql_frame(ds, records).to_sql("records", engine, index=False, chunksize=200_000)
    finally:
        engine.dispose()
    return str(path)


# --- the gate --------------------------------------------------------------------------------


def _uri(dataset: DatasetRef | str) -> str:
    return dataset.uri if isinstance(dataset, DatasetRef) else str(dataset)


def validate(
    dataset: DatasetRef | str,
    domains: Iterable[str] | None = None,
    *,
    mark: bool = True,
    docs: bool = True,
) -> ValidationReport:
    """Run the gate over ``dataset``; marks it accepted or rejected in the sidecar (``mark``)."""
    start = time.perf_counter()
    uri = _uri(dataset)
    manifest = read_manifest(uri)
    digest = str(manifest.get("digest", ""))
    if isinstance(dataset, DatasetRef) and dataset.digest and dataset.digest != digest:
        raise DatasetError(
            f"{uri}: manifest digest {digest[:12]} != reference {dataset.digest[:12]}"
        )
    wanted = list(domains or manifest["domains"])
    results: list[CheckResult] = []
    rows: dict[str, int] = {}
    hashes: dict[str, str] = {}
    n_expectations = 0
    for domain in wanted:
        if domain not in manifest["domains"]:
            raise DatasetError(
                f"{uri} has no domain {domain!r}; it has {', '.join(manifest['domains'])}"
            )
        ds = suites_for(domain)
        hashes[domain] = ds.suite_hash
        n_expectations += ds.n_expectations
        if manifest["domains"][domain].get("spec_hash") != ds.spec_hash:
            results.append(
                CheckResult(
                    domain,
                    "files",
                    "spec_hash",
                    "structural",
                    (),
                    False,
                    error="dataset was generated from another version of the "
                    "world model (spec hash differs)",
                )
            )
        tables = {t: _read_shards(uri, manifest, domain, t, results) for t in TABLES}
        results += split_checks(domain, int(manifest["seed"]), tables)
        results += phrasing_checks(domain, manifest, tables)
        results += digest_checks(uri, manifest, domain, tables)
        records = tables["records"]
        if records is None:
            continue
        rows[domain] = len(records)
        frame = records_frame(ds, records)
        results += _check_results(domain, "records", _run(ds, "records", frame))
        if "records_sql" in ds.suites:
            path = _write_sqlite(ds, records)
            try:
                results += _check_results(
                    domain, "records_sql", _run(ds, "records_sql", None, path)
                )
            finally:
                _remove(path)
        spec = get_domain(domain).spec
        if tables["documents"] is not None and "documents" in ds.suites:
            docs_frame = documents_frame(spec, tables["documents"], records)
            results += _check_results(domain, "documents", _run(ds, "documents", docs_frame))
            if tables["qa"] is not None and "qa" in ds.suites:
                qa = qa_frame(spec, tables["qa"], tables["documents"], records)
                results += _check_results(domain, "qa", _run(ds, "qa", qa))
    combined = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()
    docs_path = build_docs() if docs else str(gxctx.docs_index())
    report = ValidationReport(
        uri,
        digest,
        all(r.success for r in results),
        combined,
        results,
        docs_path,
        n_expectations,
        rows,
        time.perf_counter() - start,
    )
    if mark:
        write_sidecar(report, hashes)
    return report


def _remove(path: str) -> None:

    with contextlib.suppress(OSError):
        os.remove(path)


def build_docs() -> str:
    ctx = gxctx.get_context()
    ctx.build_data_docs(site_names=["local_site"])
    return str(gxctx.docs_index())


def require_valid(
    dataset: DatasetRef | str, domains: Iterable[str] | None = None
) -> ValidationReport:
    """``validate``; raises ``DataQualityError`` (failing checks, counts, record ids) on failure."""
    report = validate(dataset, domains)
    if not report.success:
        raise DataQualityError(report)
    return report
