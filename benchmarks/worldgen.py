"""World-model throughput: sampling + invariant checking, rendering, and pgmpy side by side.

Writes benchmarks/results/worldgen.json. Run: .venv/bin/python benchmarks/worldgen.py
One process, one thread for numpy (the target is per core); medians of repeats.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
# This file is named like the package it measures: import the package, not this script.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np  # noqa: E402

from worldgen import frames  # noqa: E402
from worldgen.domains import domain_names, get_domain  # noqa: E402
from worldgen.render import render_block  # noqa: E402

N = 1_000_000
RENDER_N = 5_000
REPEATS = 3
PGMPY_N = 20_000
OUT = Path(__file__).parent / "results" / "worldgen.json"


def median_time(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def records_per_s(name: str) -> float:
    spec = get_domain(name).spec
    rng = np.random.default_rng(0)

    def once() -> None:
        cols = spec.sample(N, rng)
        broken = [k for k, m in spec.violations(cols).items() if m.any()]
        assert not broken, broken

    return N / median_time(once)


def render_per_s(name: str) -> float:
    dom = get_domain(name)
    records = frames.to_frame(dom.spec, dom.spec.sample(RENDER_N, np.random.default_rng(1)))
    rng = np.random.default_rng(2)
    return RENDER_N / median_time(
        lambda: render_block(dom.renderer, frames.to_rows(records, dom.spec), rng)
    )


def pgmpy_medical_per_s() -> float:
    """pgmpy forward sampling of the medical DAG, discretized (3 bins per continuous variable)."""
    import logging

    import pandas as pd
    from pgmpy.models import DiscreteBayesianNetwork
    from pgmpy.sampling import BayesianModelSampling

    logging.getLogger("pgmpy").setLevel(logging.ERROR)
    spec = get_domain("medical").spec
    cols = spec.sample(50_000, np.random.default_rng(3))
    causal = [v for v in spec.variables if v.parents or v.name in ("sex", "age", "encounter_date")]
    data = {}
    for v in causal:
        x = cols[v.name]
        data[v.name] = (
            x.astype(int)
            if v.domain.dtype in ("category", "bool")
            else pd.qcut(x, 3, labels=False, duplicates="drop").astype(int)
        )
    frame = pd.DataFrame(data)
    model = DiscreteBayesianNetwork([(p, v.name) for v in causal for p in v.parents])
    model.fit(frame)  # maximum likelihood by default
    sampler = BayesianModelSampling(model)
    return PGMPY_N / median_time(
        lambda: sampler.forward_sample(size=PGMPY_N, show_progress=False), 1
    )


def main() -> None:
    result: dict[str, Any] = {
        "n": N,
        "records_per_s": {d: round(records_per_s(d)) for d in domain_names()},
        "render_per_s": {d: round(render_per_s(d)) for d in domain_names()},
    }
    pg = pgmpy_medical_per_s()
    result["pgmpy_records_per_s"] = round(pg)
    result["pgmpy_ratio"] = round(result["records_per_s"]["medical"] / pg, 1)
    result["target"] = {"records_per_s": 1_000_000, "pgmpy_ratio": 20}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
