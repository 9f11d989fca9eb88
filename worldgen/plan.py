"""A document's *plan* as data and as text: which facts it states, with which paraphrase, in order.

``worldgen.render`` draws a plan per record and renders the document from it; the plan is stored
next to the document (the ``plan`` column, ``key:template;key:template``) so that
``worldgen.render_checks`` can re-render the document from its record, and tell which facts it
states, without the random draws that made it. An entry's key is one fact key, or several joined
by ``JOIN`` when a ``Joint`` states them in one sentence, or ``DISTRACT`` and a distractor's
name. The renderer and the checks both need
this format and it needs neither of them, so it lives here, where both import it without
importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

JOIN: Final = "+"
DISTRACT: Final = "~"  # leads a distractor's entry (``worldgen.distract``): it states no fact


def stated_keys(plan: Iterable[tuple[str, int]]) -> frozenset[str]:
    """The fact keys a plan states (a shared sentence states each of its keys; a distractor,
    none)."""
    return frozenset(
        key for entry, _ in plan if not entry.startswith(DISTRACT) for key in entry.split(JOIN)
    )


def encode_plan(plan: list[tuple[str, int]]) -> str:
    return ";".join(f"{key}:{t}" for key, t in plan)


def decode_plan(text: str) -> list[tuple[str, int]]:
    if not text:
        return []
    return [(key, int(t)) for key, t in (part.rsplit(":", 1) for part in text.split(";"))]
