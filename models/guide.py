"""The questions a model was trained to answer, and about which documents: a safety net.

A question the model never learned to read, about a document of another kind, is answered by
some learned path anyway, often with high confidence ("What was the company's revenue?" about a
clinic note read ``no`` at 0.96). The guide, written beside the weights at training, holds each
domain's question forms and the words that mark its documents (words of its fact sentences no
other domain writes). A question is answered only when it is close to a form of a domain whose
marks the document carries; anything else reads ``unknown`` with the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

GUIDE = "guide.json"
CLOSE = 0.75  # word-set overlap (Jaccard) with a trained question form that counts as asking it
_WORD = re.compile(r"[^\W\d_]+")


def words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


@dataclass(frozen=True)
class Guide:
    questions: dict[str, list[str]]  # domain -> question forms
    marks: dict[str, list[str]]  # domain -> words only its documents write

    @classmethod
    def load(cls, model_dir: str | Path) -> Guide | None:
        path = Path(model_dir) / GUIDE
        if not path.exists():  # a model trained before guides: answered as before
            return None
        data = json.loads(path.read_text())
        return cls(data["questions"], data["marks"])

    def save(self, model_dir: Path) -> None:
        data = {"questions": self.questions, "marks": self.marks}
        (model_dir / GUIDE).write_text(json.dumps(data, indent=2, sort_keys=True))

    @cached_property
    def _forms(self) -> dict[str, list[frozenset[str]]]:  # each form's words, once
        return {d: [words(form) for form in forms] for d, forms in self.questions.items()}

    @cached_property
    def _marks(self) -> dict[str, frozenset[str]]:
        return {d: frozenset(marks) for d, marks in self.marks.items()}

    def why_not(self, document: str, question: str) -> str | None:
        """Why ``question`` about ``document`` is not one the model was trained to answer."""
        doc, asked = words(document), words(question)
        kinds = [d for d, marks in self._marks.items() if doc & marks]
        if not kinds:
            return "the document is none of the kinds the model was trained on"
        for domain in kinds:
            for known in self._forms[domain]:
                if len(asked & known) >= CLOSE * len(asked | known):
                    return None
        return (
            "the question is not one the model was trained to answer about a "
            f"{' or '.join(kinds)} document; it answers only what it was trained to ask"
        )


def domain_marks(vocabularies: dict[str, Iterable[str]]) -> dict[str, list[str]]:
    """Per domain, the words of its texts that no other domain's texts have (of four letters
    or more: "a", "at", "by" mark nothing)."""
    sets = {
        d: {w for t in texts for w in words(t) if len(w) >= 4} for d, texts in vocabularies.items()
    }
    return {
        d: sorted(own - set().union(*(s for o, s in sets.items() if o != d)))
        for d, own in sets.items()
    }
