"""Domains are found by their folder or registered; a domain's records depend on its name only.

A toy domain defined here (two variables, two facts, three questions, no faults of its own)
stands in for a new ``worldgen/domains/NEW/``: registered from the tests it is listed, generated
from a random stream of its own name, and changes nothing of the built-in domains' data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from worldgen.calc import compute
from worldgen.dataset import generate, load_qa, load_table, read_manifest
from worldgen.domains import (
    DomainSource,
    domain_names,
    get_domain,
    name_stream,
    register_domain,
    unregister_domain,
)
from worldgen.inject import inject_faults
from worldgen.render import Fact, Question, Renderer, flag_field, lookups, paths, stated_field
from worldgen.rules import Columns, Invariant, Recomputed
from worldgen.spec import VarDomain, Variable, WorldSpec

BUILT_IN = ("medical", "legal", "financial")
HOT = 25  # degrees from which a day is hot, in the toy world


def _temperature(parents: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(10, 31, n)


def _hot(c: Columns) -> np.ndarray:
    return np.asarray(c["temp_c"] >= HOT)


def _hot_given(parents: Columns, rng: np.random.Generator, n: int) -> np.ndarray:
    return _hot(parents)


def toy_spec(name: str) -> WorldSpec:
    return WorldSpec(
        name,
        "1",
        [
            Variable("temp_c", (), _temperature, VarDomain("int64", 10, 30, unit="C")),
            Variable("hot", ("temp_c",), _hot_given, VarDomain("bool")),
        ],
        [
            Invariant(
                "hot_from_25", "a day is hot from 25 C", (Recomputed("hot", ("temp_c",), _hot),)
            )
        ],
    )


def toy_renderer() -> Renderer:
    temperature, hot = stated_field("temp_c"), flag_field("hot")
    facts = (
        Fact("temp_c", ("It was {v} degrees.", "The thermometer read {v} degrees."), temperature),
        Fact("hot", ("Hot day: {v}.",), hot),
    )
    asked = lookups(
        ("What was the {label}?",),
        [("temp_c", "temperature", temperature), ("hot", "hot flag", hot)],
    )
    derived = Question(
        "is_hot", ("Was it hot?",), hot, paths((("temp_c",), "derived", f"{{temp_c}} >= {HOT}"))
    )
    return Renderer(facts, (*asked, derived))


def _toy(name: str) -> DomainSource:
    return DomainSource(lambda: toy_spec(name), toy_renderer)


@pytest.fixture
def toys() -> Iterator[None]:
    for name in ("toy", "zoo"):
        register_domain(name, _toy(name))
    yield
    for name in ("toy", "zoo"):
        unregister_domain(name)


def test_built_in_domains_keep_their_streams_and_order() -> None:
    assert domain_names()[:3] == BUILT_IN
    # the pinned streams are what keeps every published dataset digest
    assert [get_domain(d).seed_stream for d in BUILT_IN] == [0, 1, 2]


def test_a_registered_domain_is_listed_and_seeded_by_its_name(toys: None) -> None:
    assert domain_names() == (*BUILT_IN, "toy", "zoo")
    assert get_domain("toy").seed_stream == name_stream("toy") != name_stream("zoo")
    assert set(get_domain("toy").faults) == {"qa_answer_wrong", "document_sentence_wrong"}
    with pytest.raises(ValueError, match="already a package"):
        register_domain("legal", _toy("legal"))


def test_an_unregistered_domain_is_gone(toys: None) -> None:
    unregister_domain("zoo")
    assert "zoo" not in domain_names()
    with pytest.raises(ValueError, match="unknown domain 'zoo'"):
        get_domain("zoo")


def test_a_new_domain_changes_no_built_in_data(tmp_path: Path) -> None:
    before = generate(BUILT_IN, 200, 9, str(tmp_path / "before"))
    register_domain("toy", _toy("toy"))
    try:
        after = generate(BUILT_IN, 200, 9, str(tmp_path / "after"))
        both = generate([*BUILT_IN, "toy"], 200, 9, str(tmp_path / "both"))
    finally:
        unregister_domain("toy")
    assert after.digest == before.digest
    built_in = read_manifest(before.uri)["domains"]
    assert {d: read_manifest(both.uri)["domains"][d] for d in BUILT_IN} == built_in


def test_a_domain_s_records_do_not_depend_on_registration_order(tmp_path: Path) -> None:
    def toy_blocks(order: tuple[str, ...], out: str) -> list[str]:
        for name in order:
            register_domain(name, _toy(name))
        try:
            ref = generate(order, 300, 9, out)
        finally:
            for name in order:
                unregister_domain(name)
        blocks: list[str] = read_manifest(ref.uri)["domains"]["toy"]["blocks"]
        return blocks

    first = toy_blocks(("toy", "zoo"), str(tmp_path / "toy-zoo"))
    assert toy_blocks(("zoo", "toy"), str(tmp_path / "zoo-toy")) == first
    assert toy_blocks(("toy",), str(tmp_path / "toy")) == first


def test_the_toy_dataset_is_true_to_its_world(toys: None, tmp_path: Path) -> None:
    ref = generate(["toy", "zoo"], 300, 9, str(tmp_path / "toys"))
    records = load_table(ref.uri, "toy", "records")
    assert ((records["temp_c"] >= HOT) == records["hot"]).all()
    zoo = load_table(ref.uri, "zoo", "records")
    assert not np.array_equal(records["temp_c"], zoo["temp_c"])  # streams of their own
    qa = load_qa(ref.uri, domains=["toy"])
    derived = qa[qa["kind"] == "derived"]
    assert len(derived) and all(
        compute(d) == a for d, a in zip(derived["derivation"], derived["answer"], strict=True)
    )
    broken = inject_faults(ref.uri, "toy", "qa_answer_wrong", 0.1, 1, str(tmp_path / "bad"))
    assert len(broken.ids) and broken.digest != ref.digest
