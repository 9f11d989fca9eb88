"""Evaluation scoring and the served pyfunc, on a tiny model trained on a real small dataset."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.cli import app
from models import answer, plots
from models.answer import (
    NEVER_ABSTAIN,
    UNKNOWN,
    Answer,
    Answerer,
    stored_abstain_threshold,
)
from models.certify import CertificateMismatch, certify
from models.config import TrainConfig
from models.evaluate import (
    CONFIDENT,
    EvalReport,
    calibration,
    composite_interval,
    confident_mistakes,
    evaluate,
    outcome,
    qa_key,
    wilson_interval,
)
from models.pyfunc import VeracityAPR
from models.risk import ANSWER_NOTHING
from models.sizes import TINY_MODEL
from models.train import train
from tests.conftest import accept, was_read
from worldgen import dataset as ds

TINY = dict(TINY_MODEL)


def test_outcomes_are_simpleqa_style() -> None:
    assert outcome("yes", "Yes") == "correct"
    assert outcome("no", "yes") == "incorrect"
    assert outcome("unknown", "yes") == "abstained"
    assert outcome("unknown", "unknown") == "correct"


def test_intervals_say_what_so_many_questions_can_claim() -> None:
    assert wilson_interval(50, 100) == pytest.approx([0.4038, 0.5962], abs=1e-4)
    assert wilson_interval(0, 300) == pytest.approx([0.0, 0.01264], abs=1e-5)  # none wrong, yet
    assert wilson_interval(0, 0) == [0.0, 1.0]
    two = [np.array([1] * 90 + [0] * 10), np.array([1] * 80 + [0] * 20)]
    assert composite_interval(two) == pytest.approx([0.85 - 0.049, 0.85 + 0.049], abs=1e-4)


def test_calibration_of_a_perfectly_calibrated_model() -> None:
    conf = np.array([0.8] * 10)
    correct = np.array([1.0] * 8 + [0.0] * 2)
    ece, brier = calibration(conf, correct)
    assert ece == pytest.approx(0.0) and brier == pytest.approx(0.16)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("eval")
    ref = ds.generate(["medical", "legal"], 120, 4, str(root / "d"))
    accept(ref.uri, root / "home")  # the command evaluates only on an accepted dataset
    result = train(
        ref.uri, TrainConfig(max_steps=8, batch_size=8, out=str(root / "run"), model=TINY)
    )
    return ref.uri, result.model_dir


@pytest.mark.slow  # ~15 s on 2 cores: evaluates every question of two domains
def test_report_covers_every_question_and_metric(trained: tuple[str, str]) -> None:
    uri, model_dir = trained
    report = evaluate(model_dir, uri, "test", per_domain=None)
    qa = ds.load_qa(uri, "test")
    assert report.n == len(qa) and set(report.outcomes) == {
        qa_key(d, q) for d, q in zip(qa["domain"], qa["qa_id"], strict=True)
    }
    assert set(report.accuracy_by_domain) == {"medical", "legal"}
    assert report.accuracy == pytest.approx(np.mean(list(report.accuracy_by_domain.values())))
    counts = {o: list(report.outcomes.values()).count(o) for o in ("incorrect",)}
    assert report.hallucination_rate == pytest.approx(counts["incorrect"] / report.n)
    assert report.latency_p95_ms >= report.latency_p50_ms > 0 and report.flops_per_answer > 0
    # every answer not correct is kept for audit, beside the world model's answer
    wrong = {k for k, o in report.outcomes.items() if o != "correct"}
    assert wrong and set(report.mistakes) == wrong
    truth = {
        qa_key(d, q): a for d, q, a in zip(qa["domain"], qa["qa_id"], qa["answer"], strict=True)
    }
    assert all(m["truth"] == truth[k] for k, m in report.mistakes.items())
    keys = {qa_key(d, q): k for d, q, k in zip(qa["domain"], qa["qa_id"], qa["key"], strict=True)}
    assert all(m["key"] == keys[k] for k, m in report.mistakes.items())
    # with its confidence: the confident hallucinations are the mistakes said at CONFIDENT+
    confident = confident_mistakes(report.mistakes)
    assert all(m["said"] != "unknown" and float(m["confidence"]) >= CONFIDENT for m in confident)
    assert len(confident) == round(report.confident_hallucination * report.n)
    assert EvalReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    low, high = report.accuracy_ci95
    assert low <= report.accuracy <= high and high - low > 0.01
    low, high = report.hallucination_ci95
    assert low <= report.hallucination_rate <= high and high > 0
    older = {k: v for k, v in report.to_dict().items() if not k.endswith("_ci95")}
    assert EvalReport.from_dict(older).accuracy_ci95 == []  # a report from before intervals loads


def test_per_domain_answers_the_same_first_questions_of_each_domain(
    trained: tuple[str, str],
) -> None:
    uri, model_dir = trained
    report = evaluate(model_dir, uri, "test", per_domain=4)
    first = ds.load_qa(uri, "test").groupby("domain").head(4)
    assert report.n == 8 and set(report.outcomes) == {
        qa_key(d, q) for d, q in zip(first["domain"], first["qa_id"], strict=True)
    }
    cli = CliRunner().invoke(app, ["evaluate", model_dir, uri, "--per-domain", "4"])
    assert cli.exit_code == 0 and "questions      8" in cli.output, cli.output
    assert re.search(r"accuracy       \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", cli.output)
    bad = CliRunner().invoke(app, ["evaluate", model_dir, uri, "--per-domain", "-1"])
    assert bad.exit_code == 2 and "--per-domain must be 0" in bad.output.strip()


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_certification_writes_a_served_folder_and_leaves_the_trained_one_as_it_was(
    trained: tuple[str, str], tmp_path: Path
) -> None:
    uri, model_dir = trained
    run = tmp_path / "run"
    shutil.copytree(Path(model_dir), run / "model")
    before = _tree(run / "model")
    evidence = {"report_digest": "r1", "dataset_digest": "d1", "split": "test"}
    served = certify(run / "model", 0.25, evidence)
    assert _tree(run / "model") == before  # the trained (cached) folder is untouched
    assert stored_abstain_threshold(run / "model") is None
    assert Answerer.load(served).abstain_threshold == 0.25
    assert evaluate(str(served), uri, "test", per_domain=2).abstain_threshold == 0.25
    assert certify(run / "model", 0.25, evidence) == served  # a retry finds it again
    assert certify(run / "model", 0.5, evidence) != served  # another claim, another folder
    (served / "routing.json").write_text('{"abstain_threshold": 0.9}')
    with pytest.raises(CertificateMismatch, match="does not match its certificate"):
        certify(run / "model", 0.25, evidence)


def test_an_answer_cut_off_by_its_budget_reads_unknown(
    trained: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, model_dir = trained
    monkeypatch.setattr(answer, "MAX_ANSWER_TOKENS", 2)
    answerer = Answerer.load(model_dir)
    qa = ds.load_qa(uri, "test").head(6)
    answers = [answerer(d, q) for d, q in zip(qa["document"], qa["question"], strict=True)]
    cut = [a for a in answers if not a.finished]
    assert cut, [a.raw for a in answers]  # the tiny model writes long, non-computing derivations
    assert all(a.answer_tokens == 2 and a.text == a.raw == UNKNOWN for a in cut)


def test_a_served_row_the_model_cannot_read_is_unknown_and_the_rest_answered(
    trained: tuple[str, str],
) -> None:
    uri, model_dir = trained
    model = VeracityAPR()
    model.load_context(SimpleNamespace(artifacts={"apr": model_dir}))
    doc, question = ds.load_qa(uri, "test")[["document", "question"]].iloc[0]
    batch = pd.DataFrame(
        {
            "document": [doc, " ".join([doc] * 20), doc, None, 42],
            "question": [question, question, " ", question, question],
        },
        dtype=object,
    )
    out = model.predict(None, batch)
    alone = Answerer.load(model_dir)(doc, question)  # read and answered (or its answer refused)
    assert "send it as text" not in alone.error and "max_seq_len" not in alone.error
    assert (out.loc[0, "answer"], out.loc[0, "error"]) == (alone.text, alone.error)
    assert "over the model's max_seq_len" in out.loc[1, "error"]
    assert out.loc[2, "error"] == "question is missing or empty; send it as text"
    assert out.loc[3, "error"] == "document is missing or empty; send it as text"
    assert out.loc[4, "error"] == "document is not text but int 42; send it as text"
    unread = out.iloc[1:]
    assert (unread["answer"] == UNKNOWN).all() and unread["abstained"].all()
    assert (unread["confidence"] == 0.0).all()


@pytest.mark.slow
def test_cli_evaluates_a_registered_alias_from_the_settings_store(
    trained: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.chdir(tmp_path)  # MLflow's default experiment keeps its artifacts in ./mlruns

    from infra.settings import get_settings
    from models.pyfunc import log_model
    from registry import register_challenger

    uri, model_dir = trained
    mlflow.set_tracking_uri(get_settings().tracking_uri)
    try:
        with mlflow.start_run() as run:
            info = log_model(model_dir)
        tags = {"validation_status": "accepted", "dataset_digest": "d"}
        register_challenger(info.model_uri, run.info.run_id, tags)
    finally:
        mlflow.set_tracking_uri(None)
    # a fresh process in another folder: only the settings can lead it to the home's store
    cli = [sys.executable, "-c", "from flows.cli import app; app()", "evaluate"]
    args = ["models:/veracity-apr@challenger", uri, "--per-domain", "2"]
    done = subprocess.run([*cli, *args], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "questions      4" in done.stdout
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_pyfunc_loads_in_a_fresh_process_and_answers(
    trained: tuple[str, str], tmp_path: Path
) -> None:
    _, model_dir = trained
    script = f"""
import mlflow, pandas as pd
mlflow.set_tracking_uri("sqlite:///{tmp_path}/ml.db")
from models.pyfunc import log_model
with mlflow.start_run():
    info = log_model({model_dir!r})
print(info.model_uri)
"""
    # in tmp_path: a SQLite store puts its artifacts under ./mlruns of the working folder
    logged = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert logged.returncode == 0, logged.stderr[-2000:]
    model_uri = logged.stdout.strip().splitlines()[-1]
    load = f"""
import mlflow, pandas as pd, json
mlflow.set_tracking_uri("sqlite:///{tmp_path}/ml.db")
m = mlflow.pyfunc.load_model({model_uri!r})
out = m.predict(pd.DataFrame({{"document": ["Sex: female."], "question": ["What is the patient's sex?"]}}))
print(json.dumps(out.to_dict("records")))
"""
    served = subprocess.run(
        [sys.executable, "-c", load], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert served.returncode == 0, served.stderr[-2000:]
    row = json.loads(served.stdout.strip().splitlines()[-1])[0]
    columns = {"answer", "confidence", "abstained", "routed_fraction", "derivation", "error"}
    assert set(row) == columns | {"guaranteed", "novelty"}
    assert row["guaranteed"] is False  # a trained model, not certified: no guarantee
    assert isinstance(row["answer"], str) and 0.0 <= row["confidence"] <= 1.0


@pytest.mark.parametrize(
    "question",
    [
        "What is the patient's sex? 😀",
        "Quelle est la créatinine du patient ?",
        "What is the capital of France?",
    ],
)
def test_words_the_model_never_read_are_read_and_the_guide_judges(
    trained: tuple[str, str], question: str
) -> None:
    """An open vocabulary (issue 29): no word is unreadable, none is <unk>; a question the model
    was not trained to ask about this kind of document is still refused, by the guide."""
    uri, model_dir = trained
    answerer = Answerer.load(model_dir)
    assert answerer.tok.unknown_pieces(question) == []
    assert answerer.tok.decode(answerer.tok.encode(question)) == question.lower()
    document = ds.load_qa(uri, "test")["document"].iloc[0]
    answer = answerer(document, question)
    assert answer.text == UNKNOWN and answer.abstained and answer.uncertainty == 1.0
    assert "not one the model was trained to answer" in answer.error


def test_a_label_of_another_question_is_not_given(
    trained: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guide keeps each label question's labels from the training split: a model that
    says "Texas" (a governing law) for the cause of action reads unknown, with the reason;
    one of the question's own labels is given."""
    uri, model_dir = trained
    qa = ds.load_qa(uri, "test")
    row = qa[qa["key"] == "lookup_claim_type"].iloc[0]
    answerer = Answerer.load(model_dir)
    assert answerer.guide is not None and "negligence" in answerer.guide.labels["lookup_claim_type"]
    said: list[Answer] = []
    for text in ("Texas", "negligence"):
        wrote = Answer(text, text, "", 0.0, False, 0.0, 1, 1, 0.0)
        monkeypatch.setattr(answerer, "_generate", lambda examples, a=wrote: [a for _ in examples])
        said.append(answerer(row["document"], row["question"]))
    assert said[0].text == UNKNOWN and said[0].abstained and said[0].raw == "Texas"
    assert "'Texas' is not an answer" in said[0].error and "lookup_claim_type" in said[0].error
    assert said[1].text == "negligence" and said[1].error == ""


def test_a_document_full_of_unseen_words_is_answered(trained: tuple[str, str]) -> None:
    uri, model_dir = trained
    qa = ds.load_qa(uri, "test")
    row = qa[(qa["domain"] == "medical") & (qa["kind"] == "lookup")].iloc[0]
    noise = "Zyxwv qwerty blorptastic überweisung naïve café 😀 — the clinician’s scribbles."
    document = f"{noise} {row['document']} {noise}"
    answer = Answerer.load(model_dir)(document, row["question"])
    assert was_read(answer) and "<unk>" not in answer.raw


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("Did the plaintiff win?", "not one the model was trained to answer"),
        ("the the the the", "not one the model was trained to answer"),
        ("What is the patient's eGFR?", None),  # a medical question about a medical note
    ],
)
def test_only_questions_of_the_document_s_kind_are_answered(
    trained: tuple[str, str], question: str, reason: str | None
) -> None:
    uri, model_dir = trained
    qa = ds.load_qa(uri, "test")
    document = qa.loc[qa["domain"] == "medical", "document"].iloc[0]
    answer = Answerer.load(model_dir)(document, question)
    if reason is None:
        assert answer.error == "" or "not one the model" not in answer.error
    else:
        assert answer.text == UNKNOWN and answer.uncertainty == 1.0 and reason in answer.error


@pytest.fixture(scope="module")
def calibrated(
    trained: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, EvalReport]:
    """(dataset, a run folder holding a copy of the trained model, its evaluation at the
    default target): certification writes beside the copy, never beside the shared model."""
    uri, model_dir = trained
    run = tmp_path_factory.mktemp("calibrated") / "run"
    shutil.copytree(Path(model_dir), run / "model")
    return uri, run, evaluate(str(run / "model"), uri, "test", per_domain=6)


def test_a_model_abstains_as_its_risk_was_certified(
    calibrated: tuple[str, Path, EvalReport],
) -> None:
    # the default target, 1% at 90%: a few dozen calibration questions cannot back it
    uri, run, report = calibrated
    assert report.risk["alpha"] == 0.01 and report.risk["delta"] == pytest.approx(0.1)
    assert not report.risk["feasible"] and "the model answers nothing" in report.guarantee
    assert report.abstain_threshold == ANSWER_NOTHING and report.coverage == 0.0
    assert "incorrect" not in report.outcomes.values() and report.confident_hallucination == 0
    assert set(report.aurc) == set(report.risk_coverage) == {"estimator", "max_prob", "entropy"}
    # every signal at its own certificate: none can back 1% here either
    assert set(report.at_alpha) == set(report.aurc)
    assert all(s["coverage"] == 0.0 for s in report.at_alpha.values())
    assert report.routed_fraction <= 1.0 and report.routed_per_answer <= 1.0
    figure = plots.risk_coverage(report)  # as MLflow logs it beside the reliability diagram
    assert figure.axes[0].get_title() == "Risk-coverage"
    served = certify(
        run / "model", ANSWER_NOTHING, {"split": "test"}, report.abstain_score, report.risk
    )
    again = evaluate(str(served), uri, "test", per_domain=6)  # the served folder's own policy
    assert again.risk == report.risk and again.outcomes == report.outcomes
    # a policy on another signal (as calibration picks the best one) is served exactly so
    risk = {**report.risk, "score": "max_prob", "threshold": 0.05, "feasible": True}
    served = certify(run / "model", 0.05, {"split": "test"}, "max_prob", risk)
    answerer = Answerer.load(served)
    assert (answerer.abstain_score, answerer.abstain_threshold) == ("max_prob", 0.05)
    qa = ds.load_qa(uri, "test").head(12)
    for doc, question in zip(qa["document"], qa["question"], strict=True):
        a = answerer(doc, question)
        assert a.abstained == (a.raw != UNKNOWN and a.prob_uncertainty > 0.05), a
        assert a.text == (UNKNOWN if a.abstained else a.raw)
    bad = CliRunner().invoke(app, ["evaluate", str(served), uri, "--risk", "2"])
    assert bad.exit_code == 2 and "--risk must be between 0 and 1" in bad.output, bad.output


def test_a_served_answer_says_whether_the_guarantee_reaches_it(
    calibrated: tuple[str, Path, EvalReport],
) -> None:
    uri, run, report = calibrated
    limit = report.novelty_limit
    assert limit is not None and 0.0 <= limit < 0.1  # calibration is written as training is
    assert report.guaranteed == 0.0  # the tiny model backs no certificate: nothing is reached
    # a feasible certificate (as a trained model's would be), served with the calibration's limit
    risk = {**report.risk, "feasible": True, "threshold": NEVER_ABSTAIN}
    served = certify(run / "model", NEVER_ABSTAIN, {"split": "test"}, "entropy", risk, limit)
    answerer = Answerer.load(served)
    assert answerer.certified and answerer.novelty_limit == limit
    qa = ds.load_qa(uri, "test").head(12)
    answers = answerer.many(list(zip(qa["document"], qa["question"], strict=True)))
    for a in answers:
        assert a.novelty is not None
        assert a.guaranteed == (a.text != UNKNOWN and a.novelty <= limit), a
    # the same facts written as a person writes them: answered, but without the promise
    note = "Pt seen today, 63 y/o male smoker; BP 150/88, eGFR 42 -- HbA1c 7.9%."
    a = answerer(note, "What is the patient's eGFR?")
    assert a.novelty is not None and a.novelty > limit and not a.guaranteed
    out = VeracityAPR()
    out.answerer = answerer
    asked = pd.DataFrame({"document": [note], "question": ["What is the patient's eGFR?"]})
    rows = out.predict(None, asked)
    assert not rows["guaranteed"][0] and rows["novelty"][0] > limit
