"""Documents a person wrote, not the generator: does the model read them? writes results/handwritten.json.

    .venv/bin/python benchmarks/handwritten.py [MODEL] [--out benchmarks/results/handwritten.json]

MODEL is a model folder or an MLflow URI (default: the main job's champion). The documents below
were written by hand in the styles clinics, courts and filings use (shorthand, run-on notes,
thousands separators, scaled and parenthesised figures, spelled-out dates), with the world
model's own questions; each answer was worked out by hand and checked with ``worldgen.calc``.
Reported: correct, wrong, abstained (``unknown`` where an answer was due), confident wrong
(wrong at confidence >= 0.9, the outcome this product must not have), and how many answers the
certified risk bound reaches (``guaranteed``: a note worded unlike the calibration questions is
answered without it), each answer listed with its novelty.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from infra.errors import UserError
from models.answer import UNKNOWN, Answerer
from models.evaluate import CONFIDENT, resolve_model
from models.tokenizer import normalize

# (domain, document, [(question, the answer the world model gives)])
CASES: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "medical",
        "63-year-old man, current smoker, type 2 diabetes. BP 150/88. eGFR 42. HbA1c 7.9%. "
        "Cr 1.7 mg/dL. On metformin.",
        [
            ("What is the patient's systolic pressure?", "150"),
            ("What is the patient's diastolic pressure?", "88"),
            ("What is the patient's eGFR?", "42"),
            ("What CKD stage does the eGFR indicate?", "stage 3b"),
            ("Is the blood pressure in the hypertensive range?", "yes"),
            ("What is the patient's hba1c?", "7.9"),
            ("How old was the patient at the encounter?", "63"),
            ("What is the patient's bmi?", UNKNOWN),
        ],
    ),
    (
        "medical",
        "Clinic note, 14 March 2022. Patient: female, born June 2, 1958. Assessment: "
        "hypertension. Blood pressure today 162/95 mmHg. Serum creatinine 0.9 mg/dL. "
        "Non-smoker. Body-mass index 31.2. No current medication.",
        [
            ("How old was the patient at the encounter?", "63"),
            ("What is the patient's date of birth?", "1958-06-02"),
            ("What is the patient's sex?", "female"),
            ("What is the patient's serum creatinine?", "0.9"),
            ("What is the patient's eGFR?", "72"),
            ("What is the patient's hba1c?", UNKNOWN),
        ],
    ),
    (
        "legal",
        "Roe v. Acme Corp. The plaintiff brought a negligence claim under Texas law, seeking "
        "damages of $250,000. The accident happened on March 3, 2019; the complaint was filed "
        "on 04/15/2021. The court found duty, breach, causation and damages established, "
        "rejected the defence of contributory negligence and held the defendant liable, "
        "awarding $180,000.00.",
        [
            ("How many days passed between the incident and the filing?", "774"),
            ("What is the case's governing law?", "Texas"),
            ("What is the case's amount claimed in dollars?", "250000.00"),
            ("How much of the claim, in dollars, was not awarded?", "70000.00"),
            ("Was the defendant found liable or not liable?", "liable"),
            ("What is the case's cause of action?", "negligence"),
        ],
    ),
    (
        "financial",
        "Q3 results. Revenue was $1,200,000.00. Cost of goods sold was $700,000.00. Operating "
        "expenses came to $350,000. Interest expense: $40,000.00. The company is in the retail "
        "sector and its main debt facility is a term loan.",
        [
            ("What was gross profit, in dollars?", "500000.00"),
            ("What was operating income (EBIT), in dollars?", "150000.00"),
            ("What was the interest coverage ratio (EBIT / interest)?", "3.75"),
            ("What was the company's revenue in dollars?", "1200000.00"),
            ("What was the company's sector?", "retail"),
        ],
    ),
    (
        "financial",
        "FY summary. Revenue $2.4M, cost of goods sold $1.5M, operating expenses $600K.",
        [
            ("What was gross profit, in dollars?", "900000.00"),
            ("What was operating income (EBIT), in dollars?", "300000.00"),
            ("What was the company's interest expense in dollars?", UNKNOWN),
        ],
    ),
]
# Documents that also state figures which are not the one asked (a previous visit's reading,
# last year's revenue, a co-defendant's claim): copying one is a confident invented answer.
DISTRACTED: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "medical",
        "Follow-up, 3 Feb 2023. 58-year-old woman with chronic kidney disease. eGFR today 38 "
        "(45 at the previous visit). BP 128/76 mmHg; at the last visit 141/90. Creatinine "
        "1.4 mg/dL, previously 1.2.",
        [
            ("What is the patient's eGFR?", "38"),
            ("What CKD stage does the eGFR indicate?", "stage 3b"),
            ("What is the patient's systolic pressure?", "128"),
            ("Is the blood pressure in the hypertensive range?", "no"),
            ("What is the patient's serum creatinine?", "1.4"),
            ("How old was the patient at the encounter?", "58"),
        ],
    ),
    (
        "medical",
        "Prior eGFR: 52. HbA1c a year earlier was 8.1%. The patient is a 70-year-old man with "
        "type 2 diabetes, seen on 12 May 2022.",
        [
            ("What is the patient's eGFR?", UNKNOWN),
            ("What is the patient's hba1c?", UNKNOWN),
            ("How old was the patient at the encounter?", "70"),
        ],
    ),
    (
        "financial",
        "Q3 results. Revenue was $5,400,000.00, up from $4,900,000.00 in the prior year. Cost "
        "of goods sold was $3,100,000.00. Operating expenses were $1,250,000.00.",
        [
            ("What was the company's revenue in dollars?", "5400000.00"),
            ("What was gross profit, in dollars?", "2300000.00"),
            ("What was operating income (EBIT), in dollars?", "1050000.00"),
        ],
    ),
    (
        "financial",
        "Prior-year revenue was $3,200,000.00. Cost of goods sold was $1,900,000.00. The "
        "company operates in the utilities sector.",
        [
            ("What was the company's revenue in dollars?", UNKNOWN),
            ("What was gross profit, in dollars?", UNKNOWN),
            ("What was the company's cost of goods sold in dollars?", "1900000.00"),
        ],
    ),
    (
        "legal",
        "Smith v. Jones. Under California law the plaintiff sued for breach of written "
        "contract, claiming $250,000.00. A co-defendant claimed $90,000.00 in a separate "
        "action. Before trial the defendant offered $60,000.00 to settle. The court found the "
        "defendant liable and awarded $120,000.00.",
        [
            ("What is the case's amount claimed in dollars?", "250000.00"),
            ("What is the case's amount awarded in dollars?", "120000.00"),
            ("How much of the claim, in dollars, was not awarded?", "130000.00"),
            ("Was the defendant found liable or not liable?", "liable"),
        ],
    ),
]
# Written after shorthand ("BP 150/88", "63-year-old ...") entered the generator,
# before any model trained on them was measured, and not used to design any form: the check of
# whether those forms carry to notes they were not modelled on.
FRESH: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "medical",
        "Pt is a 47-year-old female seen 9 Sept 2021 for follow-up of hypertension. Vitals: "
        "BP 138/84, BMI 29.4. Labs: creatinine 0.8 mg/dL, HbA1c 5.9%. Non-smoker.",
        [
            ("How old was the patient at the encounter?", "47"),
            ("What is the patient's systolic pressure?", "138"),
            ("What is the patient's diastolic pressure?", "84"),
            ("Is the blood pressure in the hypertensive range?", "yes"),
            ("What is the patient's hba1c?", "5.9"),
            ("What is the patient's serum creatinine?", "0.8"),
            ("What is the patient's bmi?", "29.4"),
        ],
    ),
    (
        "medical",
        "Discharge summary (2020-11-30). Male patient, DOB 1949-02-14. Dx: type 2 diabetes. "
        "Systolic/diastolic 124/72 mmHg. Latest eGFR 27. No complications recorded.",
        [
            ("What is the patient's eGFR?", "27"),
            ("What CKD stage does the eGFR indicate?", "stage 4"),
            ("Is the blood pressure in the hypertensive range?", "no"),
            ("How old was the patient at the encounter?", "71"),
            ("What is the patient's hba1c?", UNKNOWN),
        ],
    ),
    (
        "financial",
        "Quarterly update: sales reached $3,750,000; COGS totalled $2,100,000 and operating "
        "costs were $900,000. Interest paid on the term loan: $150,000.",
        [
            ("What was gross profit, in dollars?", "1650000.00"),
            ("What was operating income (EBIT), in dollars?", "750000.00"),
            ("What was the company's interest expense in dollars?", "150000.00"),
            ("What was the interest coverage ratio (EBIT / interest)?", "5.00"),
        ],
    ),
    (
        "financial",
        "Revenue for the year came in at $8.2 million against a budget of $9.0 million. Cost of "
        "goods sold: $5.1 million. Last year's revenue was $7.4 million.",
        [
            ("What was the company's revenue in dollars?", "8200000.00"),
            ("What was gross profit, in dollars?", "3100000.00"),
            ("What was the company's cost of goods sold in dollars?", "5100000.00"),
            ("What was operating income (EBIT), in dollars?", UNKNOWN),
        ],
    ),
    (
        "legal",
        "Garcia v. Northline Logistics. Filed in New York on 2022-08-01 over a collision on "
        "5 Jan 2022, the suit alleged negligence and asked for $400,000 in damages. The jury "
        "found the defendant not liable.",
        [
            ("How many days passed between the incident and the filing?", "208"),
            ("What is the case's amount claimed in dollars?", "400000.00"),
            ("Was the defendant found liable or not liable?", "not liable"),
            ("What is the case's cause of action?", "negligence"),
        ],
    ),
]
SETS = {"plain": CASES, "distracted": DISTRACTED, "fresh": FRESH}


def outcome(answer: str, truth: str) -> str:
    if normalize(answer) == normalize(truth):
        return "correct"
    return "abstained" if answer == UNKNOWN else "wrong"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", nargs="?", default="models:/veracity-apr@champion")
    parser.add_argument("--out", default="benchmarks/results/handwritten.json")
    args = parser.parse_args()
    try:
        answerer = Answerer.load(resolve_model(args.model))
    except UserError as exc:
        print(f"skipped: {exc} (run `make run` first, or name a model)")
        return
    rows = []
    for name, cases in SETS.items():
        for domain, document, questions in cases:
            for question, truth in questions:
                rows.append(answered(answerer, name, domain, document, question, truth))
    result = {"model": args.model, **tally(rows), "target_confident_wrong": 0}
    result["sets"] = {name: tally([r for r in rows if r["set"] == name]) for name in SETS}
    result["answers"] = rows
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for r in rows:
        print(
            f"{r['outcome']:9s} {r['confidence']:.2f} {r['question']} -> {r['answer']} ({r['truth']})"
        )
    print(json.dumps({k: v for k, v in result.items() if k != "answers"}, indent=2))


def answered(
    answerer: Answerer, name: str, domain: str, document: str, question: str, truth: str
) -> dict[str, Any]:
    a = answerer(document, question)
    confidence = round(1.0 - a.uncertainty, 4)
    return {
        "set": name,
        "domain": domain,
        "question": question,
        "truth": truth,
        "answer": a.text,
        "derivation": a.derivation,
        "confidence": confidence,
        "outcome": outcome(a.text, truth),
        "reason": a.error,
        "novelty": None if a.novelty is None else round(a.novelty, 4),
        "guaranteed": a.guaranteed,
    }


def tally(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts = {k: sum(r["outcome"] == k for r in rows) for k in ("correct", "wrong", "abstained")}
    confident = [r for r in rows if r["outcome"] == "wrong" and r["confidence"] >= CONFIDENT]
    guaranteed = sum(r.get("guaranteed", False) for r in rows)
    return {
        "questions": len(rows),
        **counts,
        "confident_wrong": len(confident),
        "guaranteed": guaranteed,  # answers the certified risk bound reaches
    }


if __name__ == "__main__":
    main()
