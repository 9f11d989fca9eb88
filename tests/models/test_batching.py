"""Answers in batches: one left-padded, KV-cached generation answers many questions, each as it
would be answered alone (issue 30, item 5)."""

from __future__ import annotations

import pytest
import torch

from models.answer import UNKNOWN, Answerer
from models.config import TrainConfig
from models.sizes import TINY_MODEL
from models.train import train
from tests.models.test_apr import EXTRAS, prepared
from worldgen import dataset as ds

STOP = 5


@EXTRAS
@pytest.mark.parametrize("mode", ["apr", "dense", "all", "random"])
def test_each_row_of_a_padded_batch_decodes_as_it_would_alone(
    mode: str, extra: dict[str, object]
) -> None:
    model = prepared(mode, train=False, **extra).eval()
    g = torch.Generator().manual_seed(3)
    prompts = [torch.randint(6, 40, (n,), generator=g).tolist() for n in (5, 9, 14, 9, 20)]
    budgets = [10, 6, 12, 3, 32 - 20]
    alone = [
        model.generate(torch.tensor([p]), b, stop_token=STOP)
        for p, b in zip(prompts, budgets, strict=True)
    ]
    longest = max(map(len, prompts))
    pad = torch.tensor([longest - len(p) for p in prompts])
    idx = torch.tensor([[0] * (longest - len(p)) + p for p in prompts])
    budget = torch.tensor(budgets)
    batch = model.generate(idx, max(budgets), stop_token=STOP, pad=pad, budget=budget)
    for row, one in enumerate(alone):
        n = one.tokens.size(1)
        assert batch.tokens[row, :n].tolist() == one.tokens[0].tolist(), (mode, row)
        assert batch.routed[row, :n].tolist() == one.routed[0].tolist(), (mode, row)
        assert torch.allclose(batch.scores[row, :n], one.scores[0], atol=1e-4)
        assert torch.allclose(batch.probs[row, :n], one.probs[0], atol=1e-4)  # type: ignore[index]
        # a row that stopped or spent its budget reads the stop token after
        assert set(batch.tokens[row, n:].tolist()) <= {STOP}


@EXTRAS
@pytest.mark.parametrize("mode", ["apr", "dense", "all", "random"])
def test_rows_that_share_a_prefix_read_it_once_and_decode_as_they_would_alone(
    mode: str, extra: dict[str, object]
) -> None:
    model = prepared(mode, train=False, **extra).eval()
    g = torch.Generator().manual_seed(4)
    prefixes = [torch.randint(6, 40, (n,), generator=g).tolist() for n in (8, 13, 4)]
    tails = [torch.randint(6, 40, (n,), generator=g).tolist() for n in (1, 5, 2, 7, 3, 5)]
    of = [0, 1, 0, 2, 1, 0]  # prefix 0 read by three rows, 1 by two, 2 by one
    prompts = [prefixes[p] + t for p, t in zip(of, tails, strict=True)]
    budgets = [min(8, 32 - len(p)) for p in prompts]
    alone = [
        model.generate(torch.tensor([p]), b, stop_token=STOP)
        for p, b in zip(prompts, budgets, strict=True)
    ]

    def padded(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        longest = max(map(len, rows))
        idx = torch.tensor([[0] * (longest - len(r)) + r for r in rows])
        return idx, torch.tensor([longest - len(r) for r in rows])

    idx, pad = padded(tails)
    shared = (*padded(prefixes), torch.tensor(of))
    batch = model.generate(
        idx, max(budgets), stop_token=STOP, pad=pad, budget=torch.tensor(budgets), shared=shared
    )
    for row, one in enumerate(alone):
        n = one.tokens.size(1)
        assert batch.tokens[row, :n].tolist() == one.tokens[0].tolist(), (mode, row)
        assert batch.routed[row, :n].tolist() == one.routed[0].tolist(), (mode, row)
        assert torch.allclose(batch.scores[row, :n], one.scores[0], atol=1e-4)
        assert torch.allclose(batch.probs[row, :n], one.probs[0], atol=1e-4)  # type: ignore[index]


@pytest.fixture(scope="module")
def answerer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Answerer, list[tuple[str, str]]]:
    root = tmp_path_factory.mktemp("batching")
    ref = ds.generate(["medical", "financial"], 120, 5, str(root / "d"))
    config = TrainConfig(max_steps=40, batch_size=8, out=str(root / "run"), model=dict(TINY_MODEL))
    result = train(ref.uri, config)
    qa = ds.load_qa(ref.uri, "test", per_domain=20)
    pairs = list(zip(qa["document"], qa["question"], strict=True))
    return Answerer.load(result.model_dir), pairs


def test_batched_answers_are_the_answers_one_at_a_time(
    answerer: tuple[Answerer, list[tuple[str, str]]],
) -> None:
    model, pairs = answerer
    # questions it cannot read sit among the others and keep their places
    asked = [*pairs[:7], (pairs[0][0], "What is the patient's 😀?"), *pairs[7:], (None, "x")]
    alone = [model(d, q) for d, q in asked]
    for size in (256, 7):  # one batch, and several (the last one short)
        together = model.many(asked, batch_size=size)
        assert len(together) == len(asked)
        for one, many in zip(alone, together, strict=True):
            same = ("text", "raw", "derivation", "finished", "answer_tokens", "routed_fraction")
            assert {k: getattr(many, k) for k in same} == {k: getattr(one, k) for k in same}
            assert many.uncertainty == pytest.approx(one.uncertainty, abs=5e-4)  # float sums
            assert many.error == one.error
    assert alone[7].text == UNKNOWN and "not one the model was trained to answer" in alone[7].error
    assert alone[-1].text == UNKNOWN and "document is missing" in alone[-1].error
