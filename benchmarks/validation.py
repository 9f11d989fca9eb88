"""Throughput of the consistency gate: the full medical suite over 1,000,000 records.

Writes ``benchmarks/results/validation.json``. ``rows_per_s`` is the records suite exactly as
the gate runs it (native and custom expectations, COMPLETE result format with record ids) over
1M records already in memory; the render checks (documents, QA), which are Python row loops in
``worldgen.render_checks``, are timed separately on a rendered sample of each domain
(``render_checks_by_domain``); medical's are projected to 1M.

    .venv/bin/python benchmarks/validation.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parent / "results" / "validation.json"
# Run as a script, this file would shadow the ``validation`` package: import from the repo root.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != OUT.parent.parent]
sys.path.insert(0, str(OUT.parent.parent.parent))


def records(n: int, seed: int) -> pd.DataFrame:
    from worldgen import frames
    from worldgen.dataset import assign_split
    from worldgen.domains import get_domain

    spec = get_domain("medical").spec
    cols = spec.sample(n, np.random.default_rng(seed))
    frame = frames.to_frame(spec, cols)
    frame["split"] = assign_split(cols[spec.entity], seed)
    frame["split"] = frame["split"].astype(str)
    # What parquet gives back: dates in ms, as the gate sees them.
    for name in frame.columns:
        if frame[name].dtype.kind == "M":
            frame[name] = frame[name].astype("datetime64[ms]")
    return frame


def render_check_rates(domain: str, sample: int, home: Path) -> dict[str, int]:
    """Documents and QA checks of the gate on ``sample`` rendered records of one domain."""
    from validation import gate
    from validation.frames import documents_frame, qa_frame
    from worldgen.dataset import generate, load_table
    from worldgen.domains import get_domain

    ds, spec = gate.suites_for(domain), get_domain(domain).spec
    ref = generate([domain], sample, 1, str(home / f"sample-{domain}"))
    tables = {t: load_table(ref.uri, domain, t) for t in ("records", "documents", "qa")}
    docs = documents_frame(spec, tables["documents"], tables["records"])
    qa = qa_frame(spec, tables["qa"], tables["documents"], tables["records"])
    doc_times, doc_result = timed(lambda: gate._run(ds, "documents", docs), 1)
    qa_times, qa_result = timed(lambda: gate._run(ds, "qa", qa), 1)
    assert doc_result.success and qa_result.success, f"the clean {domain} sample must pass"
    return {
        "documents_rows_per_s": round(sample / doc_times[0]),
        "qa_rows": len(qa),
        "qa_records_per_s": round(sample / qa_times[0]),
    }


def timed(fn: Any, repeats: int) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return times, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=20_000, help="records for render checks")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="veracity-bench-")
    os.environ["VERACITY_HOME"] = home
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from infra.settings import reload_settings

    reload_settings()
    t0 = time.perf_counter()
    from validation import gate
    from validation.frames import records_frame
    from worldgen.domains import domain_names

    ds = gate.suites_for("medical")
    import_s = time.perf_counter() - t0

    raw = records(args.rows, seed=1)
    start = time.perf_counter()
    frame = records_frame(ds, raw)
    prepare_s = time.perf_counter() - start
    gate._run(ds, "records", frame)  # warm-up: metric registry, first-run caches
    times, result = timed(lambda: gate._run(ds, "records", frame), args.repeats)
    assert result.success, "the clean benchmark data must pass"
    n_records_exp = len(ds.suites["records"].expectations)
    run_s = statistics.median(times)

    # Render checks on a rendered sample (documents and QA exist only when rendered).
    by_domain = {d: render_check_rates(d, args.sample, Path(home)) for d in domain_names()}
    medical = by_domain["medical"]
    projected_render_s = args.rows * (
        1 / medical["documents_rows_per_s"] + 1 / medical["qa_records_per_s"]
    )
    start = time.perf_counter()
    docs_path = gate.build_docs()
    docs_s = time.perf_counter() - start

    out = {
        "rows": args.rows,
        "rows_per_s": round(args.rows / run_s),
        "n_expectations": n_records_exp,
        "suite": "medical records suite as the gate runs it (native + custom Recomputed), "
        "COMPLETE result format with record ids, frame in memory",
        "seconds": {
            "records_suite_median": round(run_s, 3),
            "records_suite_runs": [round(t, 3) for t in times],
            "prepare_frame": round(prepare_s, 3),
            "import_and_build_suites": round(import_s, 3),
            "data_docs_build": round(docs_s, 3),
        },
        "expectations_by_type": ds.counts_by_type(),
        "n_expectations_all_batches": ds.n_expectations,
        "render_checks": {
            "sample_records": args.sample,
            **medical,
            "projected_seconds_at_rows": round(projected_render_s, 1),
            "full_gate_rows_per_s_projected": round(args.rows / (run_s + projected_render_s)),
            "n_expectations": len(ds.suites["documents"].expectations)
            + len(ds.suites["qa"].expectations),
        },
        "render_checks_by_domain": by_domain,
        "data_docs": docs_path,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "target": {"rows_per_s": 1_000_000, "n_expectations": 20},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
