"""Each domain samples clean data, declares its faults exactly and asks reasoned questions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from worldgen.domains import domain_names, get_domain
from worldgen.faults import COMMON_FAULTS
from worldgen.frames import to_columns, to_frame, to_rows
from worldgen.plan import JOIN, decode_plan, encode_plan, stated_keys
from worldgen.render import KINDS, UNKNOWN, render_block
from worldgen.render_checks import document_mismatches

N_CLEAN = 100_000  # a multiple of 4, as the financial domain's blocks must be
N_FAULT = 20_000
COMMON = {f.name for f in COMMON_FAULTS}


def _id_columns(name: str) -> set[str]:
    ids = get_domain(name).spec.ids
    return {ids.record, ids.entity} | ({ids.period} if ids.period else set())


@pytest.fixture(scope="module", params=domain_names())
def domain(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return get_domain(request.param)


@pytest.fixture(scope="module")
def fault_frame(domain):  # type: ignore[no-untyped-def]
    cols = domain.spec.sample(N_FAULT, np.random.default_rng(7), offset=0)
    return to_frame(domain.spec, cols)


def test_clean_sample_breaks_nothing(domain) -> None:  # type: ignore[no-untyped-def]
    cols = domain.spec.sample(N_CLEAN, np.random.default_rng(2024), offset=0)
    broken = {k: int(v.sum()) for k, v in domain.spec.violations(cols).items() if v.any()}
    assert broken == {}


def test_sampling_is_deterministic_and_offset_aware(domain) -> None:  # type: ignore[no-untyped-def]
    a = domain.spec.sample(400, np.random.default_rng(3), offset=800)
    b = domain.spec.sample(400, np.random.default_rng(3), offset=800)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a[domain.spec.ids.record][0] == 800


def test_size_of_the_world(domain) -> None:  # type: ignore[no-untyped-def]
    causal = [v for v in domain.spec.variables if v.name not in _id_columns(domain.name)]
    assert 10 <= len(causal) <= 16
    assert len(domain.spec.invariants) >= 6
    # Real structure: most variables have parents.
    assert sum(1 for v in causal if v.parents) >= len(causal) // 2


def test_fault_modes_declared(domain) -> None:  # type: ignore[no-untyped-def]
    own = [f for name, f in domain.faults.items() if name not in COMMON]
    assert len(own) >= 5
    names = {inv.name for inv in domain.spec.invariants}
    for fault in own:
        assert fault.breaks and set(fault.breaks) <= names, fault.name


def test_each_fault_breaks_exactly_what_it_declares(domain, fault_frame) -> None:  # type: ignore[no-untyped-def]
    spec = domain.spec
    n = round(0.001 * N_FAULT)
    for name, fault in domain.faults.items():
        if name in COMMON:
            continue
        tables = {"records": fault_frame.copy()}
        ids = fault.apply(tables, np.random.default_rng(11), n)
        assert len(ids) >= 1 and np.array_equal(ids, np.unique(ids)), name
        cols = to_columns(spec, tables["records"])
        found = spec.violations(cols)
        broken = {k for k, v in found.items() if v.any()}
        assert broken == set(fault.breaks), name
        rows = np.zeros(len(cols[spec.ids.record]), dtype=bool)
        for inv in fault.breaks:
            rows |= found[inv]
        assert np.array_equal(np.unique(cols[spec.ids.record][rows]), ids), name
        for inv in fault.breaks:  # every declared invariant really breaks on those rows
            assert found[inv].any(), (name, inv)


def test_renderer_paths_are_well_formed(domain) -> None:  # type: ignore[no-untyped-def]
    facts = {f.key for f in domain.renderer.facts}
    for f in domain.renderer.facts:
        assert len(f.templates) >= 2, f.key
    assert any(f.withhold_p > 0 for f in domain.renderer.facts)
    kinds = [{p.kind for p in q.paths} for q in domain.renderer.questions]
    for q in domain.renderer.questions:
        for path in q.paths:
            assert set(path.needs) <= facts, q.key
            if path.kind == "multistep":
                assert len(path.needs) >= 3, q.key
            # medical's ckd_stage derives from eGFR alone (one fact); the newer domains keep
            # to "one rule over two or more facts".
            if path.kind == "derived" and domain.name != "medical":
                assert len(path.needs) >= 2, q.key
    assert any("multistep" in k for k in kinds) and any("derived" in k for k in kinds)
    if domain.name != "medical":
        reasoned = sum(1 for k in kinds if k & {"derived", "multistep"})
        assert reasoned >= len(kinds) / 2


def test_rendered_questions_are_mostly_reasoned(domain, fault_frame) -> None:  # type: ignore[no-untyped-def]
    rows = to_rows(fault_frame.iloc[:400], domain.spec)
    docs, qas = render_block(domain.renderer, rows, np.random.default_rng(5))
    assert len(docs) == 400
    counts = Counter(qa["kind"] for qa in qas)
    assert set(counts) == set(KINDS)
    if domain.name != "medical":  # medical asks the renderer's default mix (about 45%)
        assert counts["derived"] + counts["multistep"] >= len(qas) / 2, counts
    for qa in qas:
        assert isinstance(qa["answer"], str) and qa["answer"]
        assert (qa["answer"] == UNKNOWN) == (qa["kind"] == "unknown"), qa


def test_shared_sentences_name_roles_in_value_order(domain, fault_frame) -> None:  # type: ignore[no-untyped-def]
    """Facts of a joint share a sentence (up to its size) in many documents that state several;
    the values follow the roles' order, the plan re-renders it, and swapping two roles does not."""
    renderer = domain.renderer
    assert renderer.joints, "every domain states some facts several to a sentence"
    rows = to_rows(fault_frame.iloc[:300], domain.spec)
    docs, _ = render_block(renderer, rows, np.random.default_rng(11))
    by_id = {int(r["record_id"]): r for r in rows}
    shared, longest, keyed = 0, 0, 0
    for doc in docs:
        plan = decode_plan(doc["plan"])
        row = by_id[doc["record_id"]]
        for entry, template in plan:
            if JOIN not in entry:
                continue
            shared += 1
            keys = entry.split(JOIN)
            longest = max(longest, len(keys))
            joint = next(j for j in renderer.joints if keys[0] in j.roles)
            assert 2 <= len(keys) <= joint.size and set(keys) <= set(joint.roles)
            assert set(keys) <= stated_keys(plan) and entry not in stated_keys(plan)
            sentence = renderer.sentence(row, entry, template)
            assert sentence in doc["document"]
            values = [renderer.fact(k).value(row) for k in keys]
            if joint.keyed(template):  # shorthand: every role, each value where its key is
                assert set(keys) == set(joint.roles), entry
                written = joint.templates[template]
                order = sorted(keys, key=lambda k: written.index("{" + k + "}"))
                at = 0
                for k in order:
                    at = sentence.index(renderer.fact(k).value(row), at) + 1
                keyed += 1
                continue
            assert "respectively" in sentence
            places = [sentence.lower().index(joint.roles[k]) for k in keys]
            assert places == sorted(places), sentence  # roles in the plan's order
            at = places[-1]
            for v in values:  # then the values, in the same order (ValueError if not)
                at = sentence.index(v, at) + len(v)
            a, b, *rest = keys
            x, y = values[:2]
            swapped = [(JOIN.join([b, a, *rest]) if e == entry else e, t) for e, t in plan]
            if x != y:
                tampered = {**doc, "plan": encode_plan(swapped)}
                assert document_mismatches(renderer, by_id, [tampered]) == [doc["record_id"]]
    assert shared >= len(docs) // 4, shared
    assert longest == max(j.size for j in renderer.joints), longest  # the longest lists occur
    if any(j.keyed(t) for j in renderer.joints for t in range(len(j.templates))):
        assert keyed, "shorthand such as BP 150/88 occurs"
    assert document_mismatches(renderer, by_id, docs) == []
