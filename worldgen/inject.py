"""Fault injection into a dataset: a corrupted copy, and the record ids that were corrupted.

The fault modes themselves (``worldgen.faults`` and each domain's ``faults.py``) know nothing of
datasets; this module applies one to a dataset's tables and writes the copy, so the dataset
module never depends on the faults and the import graph has no cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worldgen import dataset as ds
from worldgen.domains import get_domain


@dataclass(frozen=True)
class Injected:
    """A corrupted copy of a dataset and the record ids that were corrupted."""

    uri: str
    digest: str
    mode: str
    ids: np.ndarray


def inject_faults(
    dataset: str, domain: str, mode: str, rate: float, seed: int, out: str
) -> Injected:
    """Write a copy of ``dataset`` with fault ``mode`` injected into ``rate`` of ``domain``'s records."""
    faults = get_domain(domain).faults
    if mode not in faults:
        raise ValueError(
            f"unknown fault mode {mode!r} for {domain}; choose from {', '.join(faults)}"
        )
    if not 0 < rate <= 0.5:
        raise ValueError(f"rate must be in (0, 0.5], got {rate}")
    tables = {t: ds.load_table(dataset, domain, t) for t in ds.TABLES}
    n = max(1, round(rate * len(tables["records"])))
    ids = faults[mode].apply(tables, np.random.default_rng(seed), n)
    note = {"fault": mode, "domain": domain, "rate": rate, "seed": seed, "records": len(ids)}
    ref = ds.write_variant(dataset, domain, tables, out, note)
    return Injected(ref.uri, ref.digest, mode, np.sort(ids))
