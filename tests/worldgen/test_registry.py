"""Domains are found by their folder or registered; a domain's records depend on its name only.

A toy domain registered from the tests (the medical world model and documents under another
name, standing in for a new ``worldgen/domains/NEW/``) is listed, generated from its own random
stream, and changes nothing of the built-in domains' data or digests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from worldgen.dataset import generate, read_manifest
from worldgen.domains import (
    DomainSource,
    domain_names,
    get_domain,
    medical,
    name_stream,
    register_domain,
    unregister_domain,
)
from worldgen.spec import WorldSpec


def _renamed(name: str) -> WorldSpec:
    base = medical.build()
    ids = {v.name for v in base.ids.variables()}
    own = [v for v in base.variables if v.name not in ids]
    return WorldSpec(name, base.version, own, base.invariants, base.ids)


@pytest.fixture
def toys() -> Iterator[None]:
    for name in ("toy", "zoo"):
        register_domain(name, DomainSource(lambda n=name: _renamed(n), medical.renderer))
    yield
    for name in ("toy", "zoo"):
        unregister_domain(name)


def test_built_in_domains_keep_their_streams_and_order() -> None:
    assert domain_names()[:3] == ("medical", "legal", "financial")
    assert [get_domain(d).seed_stream for d in ("medical", "legal", "financial")] == [0, 1, 2]


def test_a_registered_domain_is_listed_and_seeded_by_its_name(toys: None) -> None:
    assert domain_names() == ("medical", "legal", "financial", "toy", "zoo")
    assert get_domain("toy").seed_stream == name_stream("toy") != name_stream("zoo")
    with pytest.raises(ValueError, match="already a package"):
        register_domain("legal", DomainSource(medical.build, medical.renderer))


def test_a_new_domain_changes_no_other_domain_s_data(toys: None, tmp_path: Path) -> None:
    alone = generate(["medical"], 300, 9, str(tmp_path / "alone"))
    both = generate(["medical", "toy"], 300, 9, str(tmp_path / "both"))
    toy_first = generate(["zoo", "toy"], 300, 9, str(tmp_path / "zoo-toy"))
    blocks = {u: read_manifest(u)["domains"] for u in (alone.uri, both.uri, toy_first.uri)}
    assert blocks[both.uri]["medical"]["blocks"] == blocks[alone.uri]["medical"]["blocks"]
    # the toy's records depend on its name, not on what else is generated or registered first
    assert blocks[toy_first.uri]["toy"]["blocks"] == blocks[both.uri]["toy"]["blocks"]
    assert blocks[both.uri]["toy"]["blocks"] != blocks[alone.uri]["medical"]["blocks"]
