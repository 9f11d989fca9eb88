"""Facts given through chains of cross-references (``worldgen.refer``)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from worldgen.domains import DOMAIN_NAMES, get_domain
from worldgen.frames import to_frame, to_rows
from worldgen.plan import REF, decode_plan, encode_plan, stated_keys
from worldgen.refer import Referral
from worldgen.render import render_block
from worldgen.render_checks import answer_mismatches, document_mismatches

Rows = dict[int, dict[str, Any]]


def rendered(
    name: str, n: int, seed: int = 3
) -> tuple[Rows, list[dict[str, Any]], list[dict[str, Any]]]:
    domain = get_domain(name)
    frame = to_frame(domain.spec, domain.spec.sample(n, np.random.default_rng(seed), offset=0))
    rows = to_rows(frame, domain.spec)
    docs, qas = render_block(domain.renderer, rows, np.random.default_rng(seed))
    return {int(r["record_id"]): r for r in rows}, docs, qas


def chains(plan: list[tuple[str, int]]) -> dict[str, list[str]]:
    """Fact key -> the exhibit labels its naming sentence leads through, to the value's."""
    links = dict(e[1:].split(">") for e, _ in plan if e.startswith(REF) and ">" in e)
    found = {}
    for key, first in links.items():
        if len(key) > 1:  # a fact key names the chain; a label is a link
            path = [first]
            while path[-1] in links:
                path.append(links[path[-1]])
            found[key] = path
    return found


@pytest.mark.parametrize("name", DOMAIN_NAMES)
def test_every_chain_leads_from_its_role_to_its_own_value(name: str) -> None:
    renderer = get_domain(name).renderer
    referral = renderer.referral
    assert isinstance(referral, Referral)
    rows, docs, qas = rendered(name, 400)
    depths: Counter[int] = Counter()
    for doc in docs:
        plan = decode_plan(doc["plan"])
        row = rows[doc["record_id"]]
        labels = [e[1:].split(">")[1] for e, _ in plan if e.startswith(REF) and ">" in e]
        assert len(labels) == len(set(labels)), doc["plan"]  # a label names one exhibit
        values = {e[1:].split("=")[0]: e.split("=")[1] for e, _ in plan if "=" in e}
        for key, path in chains(plan).items():
            depths[len(path)] += 1
            assert values[path[-1]] == key, doc["plan"]  # the last exhibit holds this fact
            assert key in stated_keys(plan) and key in referral.roles
            value = renderer.fact(key).value(row)
            naming = next(t for e, t in plan if e == f"{REF}{key}>{path[0]}")
            said = renderer.sentence(row, f"{REF}{key}>{path[0]}", naming)
            assert referral.roles[key].lower() in said.lower() and value not in said
            shown = next(t for e, t in plan if e == f"{REF}{path[-1]}={key}")
            held = renderer.sentence(row, f"{REF}{path[-1]}={key}", shown)
            assert value in held and referral.roles[key].lower() not in held.lower()
    assert set(depths) == set(range(1, referral.depth + 1)), depths
    assert sum(depths.values()) >= len(docs) // 4, depths
    assert document_mismatches(renderer, rows, docs) == []
    plans = {d["record_id"]: d["plan"] for d in docs}
    assert answer_mismatches(renderer, rows, plans, qas) == []


@pytest.mark.parametrize("name", DOMAIN_NAMES)
def test_a_chain_pointing_at_another_value_is_caught(name: str) -> None:
    """Swap the facts two value sentences hold: the document no longer re-renders from its
    record, so the gate's document check fails it."""
    renderer = get_domain(name).renderer
    rows, docs, _ = rendered(name, 400)
    tampered = 0
    for doc in docs:
        plan = decode_plan(doc["plan"])
        held = [(i, e) for i, (e, _) in enumerate(plan) if e.startswith(REF) and "=" in e]
        if len(held) < 2:
            continue
        row = rows[doc["record_id"]]
        (i, a), (j, b) = held[:2]
        ka, kb = a.split("=")[1], b.split("=")[1]
        if renderer.fact(ka).value(row) == renderer.fact(kb).value(row):
            continue
        plan[i] = (f"{a.split('=')[0]}={kb}", plan[i][1])
        plan[j] = (f"{b.split('=')[0]}={ka}", plan[j][1])
        bad = {**doc, "plan": encode_plan(plan)}
        assert document_mismatches(renderer, rows, [bad]) == [doc["record_id"]]
        tampered += 1
    assert tampered > 0


def test_a_reference_naming_no_fact_or_exhibit_is_refused() -> None:
    referral = get_domain("legal").renderer.referral
    assert referral is not None
    rows, _, _ = rendered("legal", 50)
    row = next(iter(rows.values()))
    with pytest.raises(ValueError, match="not a reference entry"):
        referral.sentence({}, f"{REF}zz>q", row, 0)
