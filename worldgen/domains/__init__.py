"""The world model's domains: each module offers ``build() -> WorldSpec`` and ``renderer()``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import import_module

from worldgen.faults import COMMON_FAULTS, FaultMode
from worldgen.render import Renderer
from worldgen.spec import WorldSpec

DOMAIN_NAMES = ("medical", "legal", "financial")


@dataclass(frozen=True)
class Domain:
    name: str
    spec: WorldSpec
    renderer: Renderer
    faults: dict[str, FaultMode]


@cache
def get_domain(name: str) -> Domain:
    if name not in DOMAIN_NAMES:
        raise ValueError(f"unknown domain {name!r}; choose one of {', '.join(DOMAIN_NAMES)}")
    module = import_module(f"worldgen.domains.{name}")
    faults = {f.name: f for f in (*module.FAULTS, *COMMON_FAULTS)}
    return Domain(name, module.build(), module.renderer(), faults)


def vocabulary_texts(name: str) -> list[str]:
    """Every word the domain can write: templates, questions, category labels, yes/no/true/false.

    The world model's vocabulary is closed; a tokenizer fitted on these plus the training text
    never meets an unknown word on held-out entities.
    """
    dom = get_domain(name)
    texts = ["yes no unknown true false none"]
    for fact in dom.renderer.facts:
        texts += [t.replace("{v}", " ") for t in fact.templates]
    for joint in dom.renderer.joints:
        texts += [t.format(roles=" ", Roles=" ", values=" ") for t in joint.templates]
        texts += list(joint.roles.values())
    for question in dom.renderer.questions:
        texts += list(question.templates)
    return texts + value_phrases(name)


def value_phrases(name: str) -> list[str]:
    """The category labels a document of the domain can state ("type 2 diabetes", "term loan"):
    values a model should point at, as it points at numbers."""
    dom = get_domain(name)
    return [label for var in dom.spec.variables for label in var.domain.categories or ()]
