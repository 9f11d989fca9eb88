"""Lightning wrappers: the QA data of a world-model dataset, and the APR model's training loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from models.answer import target_text
from models.apr import APRConfig
from models.base_tokenizer import BaseTokenizer
from models.checkpoint import build
from models.config import TrainingInputError
from models.tokenizer import Tokenizer, UnknownTokenError
from worldgen.dataset import load_qa, read_manifest
from worldgen.domains import value_phrases, vocabulary_texts
from worldgen.surface import held_out

# validation while training reads a fixed sample: enough to track, cheap at every check
VAL_PER_DOMAIN = 300


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    answer_spans: tuple[tuple[int, int], ...]  # [start, end) of each answer, its <end> included


class QADataset(Dataset[Encoded]):
    def __init__(self, examples: list[Encoded]) -> None:
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> Encoded:
        return self.examples[i]


def encode_split(
    uri: str,
    split: str,
    tokenizer: Tokenizer,
    max_len: int,
    pack: bool = False,
    per_domain: int | None = None,
) -> list[Encoded]:
    """One example per question, or with ``pack`` the questions of a document after it.

    Packing (``<doc> D <q> q1 <a> a1 <end> <q> q2 <a> a2 <end> ...``) reads each document once
    for its five or so answers: the same answer supervision for a fraction of the tokens. The
    first question of a packed example is exactly what inference sees; the others see earlier
    answers of the same document, in an order fixed per record so training is reproducible.
    A document whose questions do not fit in ``max_len`` continues in another example.
    """
    frame = load_qa(uri, split, per_domain=per_domain)
    if "derivation" not in frame:
        frame = frame.assign(derivation="")
    frame = frame.sort_values(["domain", "record_id"], kind="stable")
    # plain tuples: pandas indexing per group cost more than the tokenizing itself
    rows = list(
        zip(
            frame["record_id"],
            frame["document"],
            frame["question"],
            frame["answer"],
            frame["derivation"],
            strict=True,
        )
    )
    keys = list(zip(frame["domain"], frame["record_id"], strict=True))
    out = []
    for start, end in group_bounds(keys) if pack else ((i, i + 1) for i in range(len(rows))):
        group = rows[start:end]
        order = np.random.default_rng(int(group[0][0])).permutation(len(group))
        try:
            out += encode_group(tokenizer, [group[i] for i in order], max_len + 1)
        except UnknownTokenError as exc:
            raise TrainingInputError(
                f"{split} split: {exc}; it never occurs in the training text"
            ) from None
    return out


def group_bounds(keys: list[tuple[str, int]]) -> list[tuple[int, int]]:
    """[start, end) of each run of equal keys in a sorted list."""
    starts = [i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]]
    return list(zip(starts, [*starts[1:], len(keys)], strict=True))


def encode_group(
    tokenizer: Tokenizer, group: list[tuple[int, str, str, str, str]], limit: int
) -> list[Encoded]:
    """The questions of one document after that document, each followed by what to write.

    ``group``: (record_id, document, question, answer, derivation) rows of one record."""
    doc, slots = tokenizer.encode_document(group[0][1])
    head = [tokenizer.doc_id, *doc]
    out: list[Encoded] = []
    ids, spans = list(head), list[tuple[int, int]]()
    for _, _, question, answer, derivation in group:
        qa = tokenizer.encode_question(question)
        written = [
            *tokenizer.encode_answer(target_text(answer, derivation), slots),
            tokenizer.end_id,
        ]
        if len(head) + len(qa) + len(written) > limit:
            raise TrainingInputError(
                f"an example of {len(head) + len(qa) + len(written)} tokens is over max_seq_len "
                f"{limit - 1}; raise --max-seq-len"
            )
        if spans and len(ids) + len(qa) + len(written) > limit:
            out.append(Encoded(ids, tuple(spans)))
            ids, spans = list(head), list[tuple[int, int]]()
        ids += qa
        spans.append((len(ids), len(ids) + len(written)))
        ids += written
    out.append(Encoded(ids, tuple(spans)))
    return out


def collate(batch: list[Encoded], pad_id: int, answer_only: bool) -> dict[str, Tensor]:
    """Inputs are ids[:-1], targets ids[1:]; padding and (optionally) non-answer targets -> -1."""
    width = max(len(e.ids) for e in batch) - 1
    idx = torch.full((len(batch), width), pad_id, dtype=torch.long)
    targets = torch.full((len(batch), width), -1, dtype=torch.long)
    answer = torch.zeros((len(batch), width), dtype=torch.bool)
    for row, e in enumerate(batch):
        ids = torch.tensor(e.ids, dtype=torch.long)
        n = len(e.ids) - 1
        idx[row, :n] = ids[:-1]
        targets[row, :n] = ids[1:]
        for start, end in e.answer_spans:  # positions that predict answer tokens
            answer[row, start - 1 : end - 1] = True
    mask = answer if answer_only else targets >= 0
    return {"idx": idx, "targets": targets, "loss_mask": mask, "answer_mask": answer}


class QADataModule(L.LightningDataModule):
    """Train and validation QA of a dataset, tokenized with a vocabulary fitted on train only."""

    def __init__(
        self,
        uri: str,
        max_seq_len: int,
        batch_size: int = 32,
        answer_only: bool = True,
        tokenizer: Tokenizer | None = None,
        pack: bool = True,
        base: str | None = None,
    ) -> None:
        super().__init__()
        self.uri, self.max_seq_len, self.batch_size = uri, max_seq_len, batch_size
        self.answer_only, self.pack = answer_only, pack
        self.tokenizer = tokenizer
        self.base = base  # a Hugging Face base's folder: read with its own tokenizer
        self.train_set: QADataset | None = None
        self.val_set: QADataset | None = None

    def prepare_tokenizer(self) -> Tokenizer:
        if self.tokenizer is None and self.base is not None:
            domains = read_manifest(self.uri)["domains"]
            phrases = [p for domain in domains for p in value_phrases(domain)]
            self.tokenizer = BaseTokenizer.from_folder(self.base, phrases)
        if self.tokenizer is None:
            train = load_qa(self.uri, "train")
            texts = [*train["document"], *train["question"], *train["answer"]]
            if "derivation" in train:
                texts += [target_text("", d) for d in train["derivation"] if d]
            domains = sorted(set(train["domain"]))
            manifest = read_manifest(self.uri)
            families = held_out(manifest["seed"]) if "phrasing" in manifest else None
            for domain in domains:
                texts += vocabulary_texts(domain, families)
            phrases = [p for domain in domains for p in value_phrases(domain)]
            self.tokenizer = Tokenizer.fit(texts, strict=True, phrases=phrases, subwords=True)
        return self.tokenizer

    def setup(self, stage: str | None = None) -> None:
        tok = self.prepare_tokenizer()
        self.train_set = QADataset(
            encode_split(self.uri, "train", tok, self.max_seq_len, pack=self.pack)
        )
        self.val_set = QADataset(
            encode_split(self.uri, "validation", tok, self.max_seq_len, per_domain=VAL_PER_DOMAIN)
        )

    def _loader(self, data: QADataset | None, shuffle: bool) -> DataLoader[Any]:
        assert data is not None and self.tokenizer is not None, "call setup() first"
        pad, answer_only = self.tokenizer.pad_id, self.answer_only
        return DataLoader(
            data,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=0,
            collate_fn=lambda b: collate(b, pad, answer_only),
        )

    def train_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.val_set, shuffle=False)


def binary_auroc(scores: Tensor, labels: Tensor) -> float:
    """Rank-based AUROC (Mann-Whitney U); NaN when only one class is present."""
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = torch.empty_like(scores, dtype=torch.float64)
    ranks[scores.argsort()] = torch.arange(1, len(scores) + 1, dtype=torch.float64)
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


class APRModule(L.LightningModule):
    def __init__(
        self,
        config: dict[str, Any],
        lr: float = 1e-3,
        warmup: int = 50,
        max_steps: int = 1000,
        base_tuning: str = "lora",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = build(APRConfig(**config), base_tuning)
        self._val_scores: list[Tensor] = []
        self._val_wrong: list[Tensor] = []

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        out = self.model(batch["idx"], batch["targets"], batch["loss_mask"])
        assert out.loss is not None
        self.log("train/loss", out.loss, prog_bar=True)
        for name in ("base_acc", "final_acc", "routed_fraction"):
            self.log(f"train/{name}", out.metrics[name])
        return out.loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        out = self.model(batch["idx"], batch["targets"], batch["loss_mask"])
        assert out.loss is not None
        for name, value in (("loss", out.loss), *out.metrics.items()):
            self.log(f"val/{name}", value, sync_dist=True)
        valid = batch["loss_mask"] & (batch["targets"] >= 0)
        wrong = out.base_logits.argmax(-1) != batch["targets"][valid]  # packed at `valid`
        self._val_scores.append(out.est_scores[valid].float().cpu())
        self._val_wrong.append(wrong.cpu())

    def on_validation_epoch_end(self) -> None:
        if self._val_scores:
            auroc = binary_auroc(torch.cat(self._val_scores), torch.cat(self._val_wrong))
            self.log("val/estimator_auroc", auroc, sync_dist=True)
        self._val_scores.clear()
        self._val_wrong.clear()

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams["lr"], weight_decay=0.01)
        warmup, total = self.hparams["warmup"], max(1, self.hparams["max_steps"])

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.1 + 0.9 * 0.5 * (1 + torch.cos(torch.tensor(progress * torch.pi)).item())

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
