"""Which held-out family costs accuracy? -> results/families-seedN.json

Held-out phrasing writes every fact and question in forms of the seed's held-out families at
once, so its accuracy says that something is not read, not what. Here each held-out family
(a sentence frame, a value format, a question frame) is tried alone: the test records of one
block are rendered with every fact that family can write written in it, and everything else in
training's forms (no shared sentences, as held-out renderings have none); the first questions of
each domain are answered by the model (raw answers: what serving offers before a threshold).
Reported per family: accuracy, the share answered ``unknown`` where an answer was due, per
domain, and the first failures with their reasons; ``in-family`` is the same rendering with no
family held out, the line to read the others against.

    .venv/bin/python benchmarks/families.py MODEL --seed 1 [--per-domain 300] \\
        [--out benchmarks/results/families-seed1.json]

MODEL is a model folder trained on the seed's dataset (``quality.py --keep``). The rendering
is swapped in for this measurement only (``worldgen.surface.family_choices`` and the question
phrasings): the product renders as it always does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import worldgen.dataset as dataset
import worldgen.render as render
import worldgen.surface as surface
from flows.params import DEFAULT_N
from models.answer import UNKNOWN, Answerer
from models.evaluate import outcome
from worldgen.domains import domain_names

FAILURES_KEPT = 20  # per family, for reading
RESULTS = Path(__file__).resolve().parent / "results"


class OneFamily:
    """The seed's held-out families, of which ``probe`` alone is written where it can be."""

    def __init__(self, seed: int) -> None:
        self.held = surface.held_out(seed)
        self.probe = ""

    def holders(self, form: surface.Form) -> set[str]:
        fmt = f"{form.kind}:{form.fmt}"
        return ({form.frame} & self.held.frames) | ({fmt} & self.held.formats)

    def choices(
        self, forms: tuple[surface.Form, ...], unit: str, families: Any, heldout: bool
    ) -> tuple[int, ...]:
        held = [self.holders(f) for f in forms]
        trained = tuple(i for i, h in enumerate(held) if not h)
        inside = set().union(*(surface.probe_sentences(forms[i], unit) for i in trained))
        alone = tuple(
            i
            for i, h in enumerate(held)
            if h == {self.probe} and not surface.probe_sentences(forms[i], unit) & inside
        )
        return alone or trained

    def phrasings(self, templates: tuple[str, ...], held: Any, heldout: bool) -> tuple[str, ...]:
        asked = int(self.probe[2:]) if self.probe.startswith("q:") else None
        return tuple(
            text
            for text, frame in surface.question_forms(templates)
            if (frame == asked if asked is not None else frame not in self.held.questions)
        )

    def probes(self) -> list[str]:
        h = self.held
        return ["", *sorted(h.frames), *sorted(h.formats), *[f"q:{q}" for q in sorted(h.questions)]]


def rendered(seed: int, tag: int, one: OneFamily, per_domain: int) -> pd.DataFrame:
    """The first test questions of each domain's first block, rendered for ``one.probe``."""
    # a Families of its own per probe: the forms' choices are cached by it
    families = surface.Families(tag, one.held.frames, one.held.formats, one.held.questions)
    dataset.held_out = lambda _seed: families  # type: ignore[assignment]
    frames = []
    for domain in domain_names():
        block = dataset.generate_block(domain, DEFAULT_N, seed, 0, dataset.HELD_OUT)
        docs = block["documents"][["record_id", "document"]]
        qa = block["qa"][block["qa"]["split"] == "test"].merge(docs, on="record_id")
        qa.insert(0, "domain", domain)
        frames.append(qa.head(per_domain))
    return pd.concat(frames, ignore_index=True)


def measure(answerer: Answerer, frame: pd.DataFrame) -> dict[str, Any]:
    got = answerer.many(list(zip(frame["document"], frame["question"], strict=True)))
    said = [a.offered for a in got]
    right = [outcome(s, t) == "correct" for s, t in zip(said, frame["answer"], strict=True)]
    frame = frame.assign(said=said, right=right, reason=[a.error for a in got])
    due = frame["answer"] != UNKNOWN
    failed = frame[~frame["right"]].head(FAILURES_KEPT)
    return {
        "accuracy": round(float(frame["right"].mean()), 4),
        "unknown_where_due": round(float(((frame["said"] == UNKNOWN) & due).mean()), 4),
        "by_domain": {d: round(float(g.mean()), 4) for d, g in frame.groupby("domain")["right"]},
        "n": len(frame),
        "failures": failed[["domain", "key", "question", "answer", "said", "reason"]].to_dict(
            "records"
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a model folder trained on the seed's dataset")
    parser.add_argument("--seed", type=int, required=True, help="the dataset's seed")
    parser.add_argument("--per-domain", type=int, default=300)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if not Path(args.model).is_dir():
        raise SystemExit(f"{args.model}: not a model folder; write one with quality.py --keep")
    answerer = Answerer.load(args.model)
    one = OneFamily(args.seed)
    surface.family_choices = one.choices  # type: ignore[assignment]
    render._phrasings = one.phrasings  # type: ignore[assignment]
    families: dict[str, Any] = {}
    for tag, probe in enumerate(one.probes()):
        one.probe = probe
        got = measure(answerer, rendered(args.seed, 10_000 + tag, one, args.per_domain))
        name = probe or "in-family"
        families[name] = got
        print(f"{name:22s} {got['accuracy']:.3f}  unknown {got['unknown_where_due']:.3f}")
    out = Path(args.out or RESULTS / f"families-seed{args.seed}.json")
    payload = {
        "benchmark": "families",
        "model": args.model,
        "seed": args.seed,
        "held_out": one.held.as_dict(),
        "questions_per_domain": args.per_domain,
        "families": families,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
