"""One rendered block of a domain as the QA checks read it: rows by record id, plans, QA."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from worldgen.dataset import generate_block
from worldgen.domains import Domain, get_domain
from worldgen.frames import to_rows


@dataclass(frozen=True)
class Block:
    domain: Domain
    rows: dict[int, dict[str, Any]]  # record id -> plain row, as rendering reads it
    plans: dict[int, str]  # record id -> encoded plan
    qa: pd.DataFrame


def rendered_block(domain: str, n: int) -> Block:
    dom = get_domain(domain)
    tables = generate_block(domain, n, 0, 0)
    rows = {int(r["record_id"]): r for r in to_rows(tables["records"], dom.spec)}
    plans = dict(zip(tables["documents"]["record_id"], tables["documents"]["plan"], strict=True))
    return Block(dom, rows, plans, tables["qa"])
