"""APR over a Hugging Face base (``--base``): tiny GPT-2- and Llama-style bases built from
configs (``tests.hf_bases``, nothing downloaded) fine-tune in each tuning, export a plain model
(safetensors + JSON, adapters merged) and answer the way the built-in model does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from flows.cli import app
from models.answer import Answerer
from models.base_tokenizer import BaseTokenizer, load_tokenizer
from models.checkpoint import load_model
from models.config import TUNINGS
from models.hf import HFAPRTransformer
from models.train import TrainResult, train
from tests.conftest import accept, was_read
from tests.hf_bases import KINDS, base_run, save_base
from worldgen import dataset as ds


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> ds.DatasetRef:
    root = tmp_path_factory.mktemp("hf")
    ref = ds.generate(["medical", "financial"], 60, 4, str(root / "d"))
    accept(ref.uri, root / "home")
    return ref


@pytest.fixture(scope="module")
def bases(small: ds.DatasetRef, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    qa = ds.load_qa(small.uri, "train")
    texts = [*qa["document"], *qa["question"], *qa["answer"]]
    root = tmp_path_factory.mktemp("bases")
    return {kind: save_base(kind, texts, root / kind) for kind in KINDS}


def _train(small: ds.DatasetRef, base: Path, tuning: str, out: Path) -> TrainResult:
    return train(small.uri, base_run(base, tuning, out))


def test_the_base_tokenizer_points_at_values_and_reads_them_back(bases: dict[str, Path]) -> None:
    tok = BaseTokenizer.from_folder(bases["llama"])
    doc = "Revenue was $1,200,000.00. Cost of goods sold was $700,000.00; a note: déjà vu 🙂."
    example = tok.encode_example(doc, "What is the gross profit?", "1200000.00 - 700000.00")
    assert example.slots == ("1200000.00", "700000.00")
    answer = example.ids[example.answer_start :]
    slot = tok.index["<v0>"]
    assert answer[0] == slot and answer[-2] == slot + 1 and answer[-1] == tok.end_id
    assert tok.decode(answer, slots=example.slots) == "1200000.00 - 700000.00"
    assert max(example.ids) < tok.vocab_size and tok.unknown_pieces(doc) == []
    assert tok.decode(tok.encode(doc)) == " ".join(doc.lower().split())  # any text, no <unk>
    again = load_tokenizer(tok.to_json())
    assert isinstance(again, BaseTokenizer) and again.encode(doc) == tok.encode(doc)


@pytest.mark.slow
@pytest.mark.parametrize("tuning", TUNINGS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_base_fine_tunes_and_exports_a_plain_model(
    kind: str, tuning: str, small: ds.DatasetRef, bases: dict[str, Path], tmp_path: Path
) -> None:
    result = _train(small, bases[kind], tuning, tmp_path / "run")
    assert result.steps == 3
    state = load_file(str(Path(result.model_dir) / "model.safetensors"))
    assert not [k for k in state if "lora" in k]  # adapters merged: a plain model
    original = AutoModelForCausalLM.from_pretrained(bases[kind], local_files_only=True)
    changed = {k for k, v in original.state_dict().items() if not torch.equal(state[f"hf.{k}"], v)}
    embeddings = {k for k in original.state_dict() if "wte" in k or "embed_tokens" in k}
    if tuning == "frozen":
        assert changed == set()  # the base's weights to the last one
    elif tuning == "lora":  # the adapted attention projections only
        assert changed and all(("attn" in k or "self_attn" in k) for k in changed), changed
    else:
        assert changed >= embeddings
    record = json.loads((Path(result.model_dir) / "config.json").read_text())["base"]
    assert record["path"] == str(bases[kind].resolve()) and record["tuning"] == tuning
    assert record["model_type"] == kind
    assert record["parameters"] == sum(p.numel() for p in original.parameters())
    model, tok = load_model(result.model_dir)  # from the folder alone: the base is not read
    assert isinstance(model, HFAPRTransformer) and isinstance(tok, BaseTokenizer)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_a_fine_tuned_base_answers_batched_as_alone(
    kind: str, small: ds.DatasetRef, bases: dict[str, Path], tmp_path: Path
) -> None:
    result = _train(small, bases[kind], "full", tmp_path / "run")
    answerer = Answerer.load(result.model_dir)
    rows = ds.load_qa(small.uri, "test").head(4)
    pairs = list(zip(rows["document"], rows["question"], strict=True))
    together = answerer.many(pairs)
    for (doc, question), answer in zip(pairs, together, strict=True):
        alone = answerer(doc, question)
        assert (alone.raw, alone.text, alone.derivation) == (
            answer.raw,
            answer.text,
            answer.derivation,
        )
        assert alone.uncertainty == pytest.approx(answer.uncertainty, abs=5e-4)
        assert answer.error == alone.error and was_read(answer)


@pytest.mark.slow
def test_a_base_with_embedding_rows_past_its_tokenizer_writes_veracity_s_tokens(
    small: ds.DatasetRef, tmp_path: Path
) -> None:
    qa = ds.load_qa(small.uri, "train")
    texts = [*qa["document"], *qa["question"], *qa["answer"]]
    base = save_base("llama", texts, tmp_path / "padded", padded_rows=40)
    result = _train(small, base, "frozen", tmp_path / "run")
    model, tok = load_model(result.model_dir)
    example = tok.encode_example(qa["document"][0], qa["question"][0])
    logits = model(torch.tensor([example.ids])).logits
    assert logits.size(-1) == tok.vocab_size  # the padding rows are not ids
    answer = Answerer.load(result.model_dir)(qa["document"][0], qa["question"][0])
    assert was_read(answer)


def test_a_base_that_is_not_a_model_folder_is_one_line(
    small: ds.DatasetRef, tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["train", small.uri, "--base", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "not a model folder (no config.json)" in result.output


def test_a_base_apr_cannot_fit_is_one_line(small: ds.DatasetRef, tmp_path: Path) -> None:
    encoder = tmp_path / "t5"
    encoder.mkdir()
    (encoder / "config.json").write_text(json.dumps({"model_type": "t5", "d_model": 32}))
    args = ["train", small.uri, "--base", str(encoder), "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "a 't5' model is not a causal LM" in result.output
