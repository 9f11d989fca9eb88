"""Surface forms: every form reads back to its record, and held-out families never reach training."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from worldgen import dataset as ds
from worldgen.dataset import HELD_OUT, IN_FAMILY, generate_block
from worldgen.domains import domain_names, get_domain, question_forms, vocabulary_texts
from worldgen.frames import to_rows
from worldgen.plan import decode_plan
from worldgen.surface import TEXT_LINKS, held_out, write
from worldgen.values import canonical_of

SEED = 3


@pytest.mark.parametrize("domain", domain_names())
def test_every_form_of_every_fact_reads_back_to_the_record(domain: str) -> None:
    dom = get_domain(domain)
    records = generate_block(domain, 60, SEED, 0)["records"]
    rows = to_rows(records, dom.spec)
    for fact in dom.renderer.facts:
        for form in fact.forms:
            for row in rows:
                value = fact.value(row)
                sentence = write(form, value, fact.unit)
                if form.kind == "text":
                    assert value.lower() in sentence.lower(), (form, sentence)
                else:
                    assert canonical_of(sentence) == [value], (form, sentence)


def test_each_kind_of_fact_has_twenty_forms_and_each_question_eight_phrasings() -> None:
    per_kind: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for domain in domain_names():
        renderer = get_domain(domain).renderer
        for fact in renderer.facts:
            assert len(fact.forms) >= 20, fact.key
            per_kind[fact.kind] |= {(f.template, f.fmt) for f in fact.forms}
        for question in renderer.questions:
            assert len(question.phrasings(held_out(SEED), False)) >= 6, question.key
            assert len(question.phrasings(held_out(SEED), True)) >= 2, question.key
    assert set(per_kind) == {"money", "date", "number", "text"}


def _sentences(domain: str, phrasing: str) -> tuple[set[str], set[str], set[tuple[str, int]]]:
    dom = get_domain(domain)
    block = generate_block(domain, 1500, SEED, 0, phrasing)
    rows = {int(r["record_id"]): r for r in to_rows(block["records"], dom.spec)}
    sentences, entries = set(), set()
    for rid, plan in zip(block["documents"]["record_id"], block["documents"]["plan"], strict=True):
        for entry, form in decode_plan(plan):
            sentences.add(dom.renderer.sentence(rows[int(rid)], entry, form))
            entries.add((entry, form))
    return sentences, set(block["qa"]["question"]), entries


@pytest.mark.parametrize("domain", domain_names())
def test_held_out_families_never_reach_training(domain: str) -> None:
    families = held_out(SEED)
    renderer = get_domain(domain).renderer
    inside, asked_inside, entries_inside = _sentences(domain, IN_FAMILY)
    outside, asked_outside, entries_outside = _sentences(domain, HELD_OUT)
    for entry, form in entries_inside:  # the in-family rendering draws no held-out form
        if "+" not in entry:
            assert not renderer.written_by(entry).forms[form].held_out_by(families)
    for entry, form in entries_outside:
        assert "+" not in entry and renderer.written_by(entry).forms[form].held_out_by(families)
    # and not even by coincidence: no held-out sentence or question is written in-family
    assert not inside & outside
    assert not asked_inside & asked_outside
    assert set(question_forms(domain, families)) >= asked_inside
    assert not set(question_forms(domain, families)) & asked_outside
    vocabulary = " ".join(vocabulary_texts(domain, families)).lower()
    assert all(q.lower() not in vocabulary for q in asked_outside)


def test_the_manifest_records_the_rendering_and_the_held_out_families(tmp_path: Path) -> None:
    ref = ds.generate(["legal"], 200, SEED, str(tmp_path / "in"))
    twin = ds.generate(["legal"], 200, SEED, str(tmp_path / "out"), phrasing=HELD_OUT)
    mine, other = ds.read_manifest(ref.uri), ds.read_manifest(twin.uri)
    assert mine["phrasing"]["rendering"] == IN_FAMILY and other["phrasing"]["rendering"] == HELD_OUT
    assert mine["phrasing"]["held_out"] == other["phrasing"]["held_out"]
    assert mine["phrasing"]["held_out"] == held_out(SEED).as_dict()
    assert ref.digest != twin.digest
    # the same records, the same entities in the same splits
    a, b = (ds.load_table(r.uri, "legal", "records") for r in (ref, twin))
    assert a.equals(b)
    with pytest.raises(ds.DatasetError, match="phrasing must be one of"):
        ds.generate(["legal"], 200, SEED, str(tmp_path / "x"), phrasing="sideways")


def test_a_family_list_added_later_leaves_what_earlier_lists_hold_out_as_it_was() -> None:
    """Each list's share is drawn in turn and a new list is drawn last: held-out phrasing over
    the earlier lists names the same families it did before the list existed (seed 0 as
    recorded before ``TEXT_LINKS``), so results across the change compare like with like."""
    families = held_out(0)
    before = {"text:5", "text:8", "value:1", "value:10", "value:17", "value:5"}
    assert {f for f in families.frames if not f.startswith("link:")} == before
    assert families.formats == {"date:us_slash", "money:parenthesised", "money:usd_million"}
    assert families.questions == {3, 6}
    links = {f for f in families.frames if f.startswith("link:")}
    assert 0 < len(links) < len(TEXT_LINKS)
    # a category is written joined by a link too, in-family and held out
    fact = next(f for f in get_domain("legal").renderer.facts if f.kind == "text")
    framed = {fact.forms[i].frame for i in fact.choices(families, False)}
    assert any(f.startswith("link:") for f in framed)
    assert {fact.forms[i].frame for i in fact.choices(families, True)} & links
