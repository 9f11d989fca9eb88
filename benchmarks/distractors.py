"""Does the model copy a figure that is not the one asked? -> results/distractors.json

Every test question about a document that states a distractor (``worldgen.distract``: a previous
visit's eGFR, last year's revenue, a co-defendant's claim) is answered twice by the served model:
on the document as generated, and on the same document without its distractor sentence
(re-rendered from the record and the plan less that entry). The two differ in one sentence, so
what changes is what the distractor does. Reported per rendering (in-family, and held-out
phrasing with ``--heldout``) and each way: accuracy, wrong answers, confident wrong
(confidence >= 0.9) and *copies*: wrong answers that are the distractor's value, or whose
derivation uses it.

    .venv/bin/python benchmarks/distractors.py [MODEL DATASET] [--heldout DATASET-heldout] \\
        [--per-domain 1000] [--out benchmarks/results/distractors.json]

By default the main job's (``make run``): the champion, its dataset and its held-out twin.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flows.params import DEFAULT_N
from infra.errors import UserError
from infra.settings import get_settings
from infra.storage import join
from models.answer import Answerer
from models.evaluate import CONFIDENT, resolve_model
from models.tokenizer import normalize
from worldgen.dataset import load_table
from worldgen.domains import domain_names, get_domain
from worldgen.frames import to_rows
from worldgen.plan import DISTRACT, decode_plan

FIGURE = re.compile(r"-?\d[\d.\-]*\d|\d")  # a number, an amount or a date in a derivation


def distracted_questions(uri: str, per_domain: int) -> pd.DataFrame:
    """Test questions on documents with a distractor: the document, the same without it, and
    the distractor's value (up to ``per_domain`` questions a domain)."""
    out = []
    for domain in domain_names():
        dom = get_domain(domain)
        records = load_table(uri, domain, "records")
        rows = {int(r["record_id"]): r for r in to_rows(records, dom.spec)}
        docs = load_table(uri, domain, "documents").set_index("record_id")
        qa = load_table(uri, domain, "qa")
        distracted = set(docs.index[docs["plan"].str.contains(DISTRACT, regex=False)])
        qa = qa[(qa["split"] == "test") & qa["record_id"].isin(distracted)]
        for record_id, group in list(qa.groupby("record_id", sort=True)):
            plan = decode_plan(str(docs.at[record_id, "plan"]))
            row = rows[int(record_id)]
            (entry,) = [e for e, _ in plan if e.startswith(DISTRACT)]
            distractor = dom.renderer.distractor(entry)
            clean = dom.renderer.document(row, [p for p in plan if p[0] != entry])
            for question, answer in zip(group["question"], group["answer"], strict=True):
                out.append(
                    {
                        "domain": domain,
                        "distractor": distractor.name,
                        "value": distractor.stated(row),
                        "document": docs.at[record_id, "document"],
                        "clean": clean,
                        "question": question,
                        "truth": answer,
                    }
                )
            if sum(r["domain"] == domain for r in out) >= per_domain:
                break
    return pd.DataFrame(out)


def tally(frame: pd.DataFrame, answers: list[Any]) -> dict[str, Any]:
    right = wrong = confident = copies = 0
    for a, value, truth in zip(answers, frame["value"], frame["truth"], strict=True):
        if normalize(a.text) == normalize(truth):
            right += 1
        elif a.text != "unknown":
            wrong += 1
            confident += 1 - a.uncertainty >= CONFIDENT
            copies += a.text == value or value in FIGURE.findall(a.derivation)
    n = len(frame)
    return {
        "questions": n,
        "accuracy": round(right / n, 4) if n else 0.0,
        "wrong": wrong,
        "confident_wrong": confident,
        "copies": copies,
    }


def measure(answerer: Answerer, uri: str, per_domain: int) -> dict[str, Any]:
    frame = distracted_questions(uri, per_domain)
    pairs = list(zip(frame["document"], frame["question"], strict=True))
    with_it = answerer.many(pairs)
    without = answerer.many(list(zip(frame["clean"], frame["question"], strict=True)))
    return {
        "with_distractor": tally(frame, with_it),
        "without_distractor": tally(frame, without),
        "by_distractor": {
            name: tally(frame[frame["distractor"] == name], [with_it[i] for i in idx])
            for name, idx in frame.groupby("distractor").indices.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", nargs="?", default="models:/veracity-apr@champion")
    parser.add_argument("dataset", nargs="?", default=None)
    parser.add_argument("--heldout", default=None, help="the dataset's held-out-phrasing twin")
    parser.add_argument("--per-domain", type=int, default=1000)
    parser.add_argument("--out", default="benchmarks/results/distractors.json")
    args = parser.parse_args()
    if args.dataset is None:  # the main job's, and its twin
        args.dataset = join(get_settings().datasets_root, f"ds-seed0-n{DEFAULT_N}")
        args.heldout = args.heldout or f"{args.dataset}-heldout"
    try:
        answerer = Answerer.load(resolve_model(args.model))
        result: dict[str, Any] = {"model": args.model, "dataset": args.dataset}
        result["in_family"] = measure(answerer, args.dataset, args.per_domain)
        if args.heldout:
            result["heldout_phrasing"] = measure(answerer, args.heldout, args.per_domain)
    except UserError as exc:
        print(f"skipped: {exc} (run `make run` first, or name a model and a dataset)")
        return
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
