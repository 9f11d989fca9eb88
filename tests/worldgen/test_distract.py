"""Distractors: other figures beside the facts, known to the world model, answering nothing."""

from __future__ import annotations

import pandas as pd
import pytest

from worldgen.dataset import HELD_OUT, generate_block
from worldgen.domains import domain_names, get_domain
from worldgen.frames import to_rows
from worldgen.plan import DISTRACT, decode_plan, stated_keys
from worldgen.render_checks import answer_mismatches, document_mismatches
from worldgen.surface import held_out, write
from worldgen.values import canonical_of

SEED = 5


@pytest.mark.parametrize("domain", domain_names())
def test_every_distractor_reads_back_to_its_own_value_never_the_facts(domain: str) -> None:
    dom = get_domain(domain)
    rows = to_rows(generate_block(domain, 60, SEED, 0)["records"], dom.spec)
    assert dom.renderer.distractors, "each domain states figures a careless reader would copy"
    for distractor in dom.renderer.distractors:
        fact = dom.renderer.fact(distractor.of)
        for row in rows:
            value = distractor.stated(row)
            assert value != fact.value(row), (distractor.name, row["record_id"])
            assert value == distractor.stated(dict(row))  # the record fixes it
            for form in distractor.forms:
                shown = canonical_of(write(form, value, distractor.unit))
                if shown:  # a format that cannot state the value is never drawn for it
                    assert shown == [value], (form, value)


@pytest.mark.parametrize("domain", domain_names())
def test_a_distractor_states_no_fact_and_the_checks_re_render_it(domain: str) -> None:
    dom = get_domain(domain)
    tables = generate_block(domain, 600, SEED, 0)
    docs, qa = tables["documents"], tables["qa"]
    rows = {int(r["record_id"]): r for r in to_rows(tables["records"], dom.spec)}
    distracted = docs[docs["plan"].str.contains(DISTRACT, regex=False)]
    assert 0.12 < len(distracted) / len(docs) < 0.3
    plans = dict(zip(docs["record_id"], docs["plan"], strict=True))
    assert document_mismatches(dom.renderer, rows, docs.to_dict("records")) == []
    assert answer_mismatches(dom.renderer, rows, plans, qa.to_dict("records")) == []
    for plan in distracted["plan"]:
        assert all(not key.startswith(DISTRACT) for key in stated_keys(decode_plan(plan)))


def test_last_years_revenue_does_not_answer_this_years() -> None:
    dom = get_domain("financial")
    row = to_rows(generate_block("financial", 5, SEED, 0)["records"], dom.spec)[0]
    prior = dom.renderer.distractor(f"{DISTRACT}prior_revenue")
    plan = [(prior.entry, 0), ("sector", 0)]
    document = dom.renderer.document(row, plan)
    assert prior.stated(row) in document
    values = dom.renderer.stated_values(row, stated_keys(plan))
    resolution = dom.renderer.question("lookup_revenue_cents").resolve(row, values)
    assert resolution.kind == "unknown"


def test_a_changed_digit_in_a_distractor_fails_the_render_check() -> None:
    dom = get_domain("financial")
    tables = generate_block("financial", 200, SEED, 0)
    rows = {int(r["record_id"]): r for r in to_rows(tables["records"], dom.spec)}
    docs = tables["documents"]
    doc = docs[docs["plan"].str.contains(DISTRACT, regex=False)].iloc[0].to_dict()
    entry, form = next((e, f) for e, f in decode_plan(doc["plan"]) if e.startswith(DISTRACT))
    sentence = dom.renderer.sentence(rows[doc["record_id"]], entry, form)
    at = next(i for i, ch in enumerate(sentence) if ch.isdigit())
    changed = sentence[:at] + str((int(sentence[at]) + 1) % 10) + sentence[at + 1 :]
    broken = {**doc, "document": doc["document"].replace(sentence, changed)}
    assert document_mismatches(dom.renderer, rows, [broken]) == [doc["record_id"]]


def test_the_held_out_rendering_writes_distractors_only_in_held_out_forms() -> None:
    dom = get_domain("financial")
    docs: pd.DataFrame = generate_block("financial", 300, SEED, 0, HELD_OUT)["documents"]
    entries = [e for plan in docs["plan"] for e in decode_plan(plan) if e[0].startswith(DISTRACT)]
    assert entries
    families = held_out(SEED)
    for entry, form in entries:
        assert dom.renderer.distractor(entry).forms[form].held_out_by(families)
