"""The world model's domains: each package here offers ``build() -> WorldSpec``, ``renderer()``
and ``FAULTS``, and is found by its folder; ``register_domain`` adds one from elsewhere."""

from __future__ import annotations

import hashlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import import_module

from worldgen.faults import COMMON_FAULTS, FaultMode
from worldgen.render import Renderer
from worldgen.spec import WorldSpec
from worldgen.surface import Families
from worldgen.values import MONTHS, SCALES


@dataclass(frozen=True)
class Domain:
    name: str
    spec: WorldSpec
    renderer: Renderer
    faults: dict[str, FaultMode]
    seed_stream: int  # the domain's own random stream: records never depend on other domains


@dataclass(frozen=True)
class DomainSource:
    """How to build a domain: what a package under ``worldgen/domains/`` offers, or a test's."""

    build: Callable[[], WorldSpec]
    renderer: Callable[[], Renderer]
    faults: tuple[FaultMode, ...] = ()
    seed_stream: int | None = None  # None: derived from the name
    order: int = 100  # where it is listed; the built-in ones first, in their historical order


_REGISTERED: dict[str, DomainSource] = {}


def name_stream(name: str) -> int:
    """A domain's random stream from its name alone, so adding or reordering domains never
    changes another domain's records (a 32-bit prefix of the name's sha256)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")


def _package_source(name: str) -> DomainSource:
    module = import_module(f"worldgen.domains.{name}")
    return DomainSource(
        module.build,
        module.renderer,
        tuple(module.FAULTS),
        getattr(module, "SEED_STREAM", None),
        getattr(module, "ORDER", 100),
    )


@cache
def _packages() -> dict[str, DomainSource]:
    """Every package under ``worldgen/domains/``: adding a domain is adding its folder."""
    found = pkgutil.iter_modules(__path__)
    return {m.name: _package_source(m.name) for m in found if m.ispkg}


def _sources() -> dict[str, DomainSource]:
    return {**_packages(), **_REGISTERED}


def register_domain(name: str, source: DomainSource) -> None:
    """Add a domain that lives outside ``worldgen/domains/`` (tests, a user's own package)."""
    if name in _packages():
        raise ValueError(f"domain {name!r} is already a package of worldgen.domains")
    _REGISTERED[name] = source
    get_domain.cache_clear()


def unregister_domain(name: str) -> None:
    _REGISTERED.pop(name, None)
    get_domain.cache_clear()


def domain_names() -> tuple[str, ...]:
    """Every domain, in listing order: the built-in ones as they always were, then by name."""
    sources = _sources()
    return tuple(sorted(sources, key=lambda n: (sources[n].order, n)))


@cache
def get_domain(name: str) -> Domain:
    sources = _sources()
    if name not in sources:
        raise ValueError(f"unknown domain {name!r}; choose one of {', '.join(domain_names())}")
    src = sources[name]
    faults = {f.name: f for f in (*src.faults, *COMMON_FAULTS)}
    stream = name_stream(name) if src.seed_stream is None else src.seed_stream
    return Domain(name, src.build(), src.renderer(), faults, stream)


def vocabulary_texts(name: str, families: Families | None = None) -> list[str]:
    """Every word the domain writes in training: its facts' in-family forms (without
    ``families``: the hand-written ones), questions, category labels, yes/no/true/false.

    A tokenizer fitted on these plus the training text never meets an unknown word on held-out
    entities written in-family; held-out phrasing may bring words training never saw.
    """
    dom = get_domain(name)
    texts = ["yes no unknown true false none", *MONTH_WORDS]
    for fact in dom.renderer.facts:
        forms = [fact.forms[i] for i in fact.choices(families, heldout=False)]
        texts += [f.template.replace("{v}", " ") for f in forms]
    for joint in dom.renderer.joints:
        texts += joint.words()
    texts += [
        d.forms[i].template.replace("{v}", " ")
        for d in dom.renderer.distractors
        for i in d.choices(families, heldout=False)
    ]
    texts += question_forms(name, families)
    return texts + value_phrases(name)


# the words values are written in (months, scales, currency): a format held out brings none new
MONTH_WORDS = (" ".join(MONTHS), " ".join(SCALES), "usd dollars")


def question_forms(name: str, families: Families | None = None) -> list[str]:
    """Every way the domain asks a question in training: the in-family phrasings of
    ``families`` (without: the hand-written questions)."""
    questions = get_domain(name).renderer.questions
    return [t for q in questions for t in q.phrasings(families, heldout=False)]


def question_keys(name: str, families: Families | None = None) -> list[str]:
    """The key of each of ``question_forms(name, families)``, in the same order."""
    questions = get_domain(name).renderer.questions
    return [q.key for q in questions for _ in q.phrasings(families, heldout=False)]


def document_texts(name: str) -> list[str]:
    """The words a document of the domain is written in: its fact sentences and labels."""
    dom = get_domain(name)
    # every form: the grammar's frames are every domain's, so their words mark none
    texts = [f.template.replace("{v}", " ") for fact in dom.renderer.facts for f in fact.forms]
    texts += [t.replace("{v}", " ") for d in dom.renderer.distractors for t in d.templates]
    for joint in dom.renderer.joints:
        texts += joint.words()
    return texts + value_phrases(name)


def value_phrases(name: str) -> list[str]:
    """The category labels a document of the domain can state ("type 2 diabetes", "term loan"):
    values a model should point at, as it points at numbers."""
    dom = get_domain(name)
    return [label for var in dom.spec.variables for label in var.domain.categories or ()]
