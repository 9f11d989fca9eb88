"""Answering one question with a trained model: greedy decoding, uncertainty, abstention.

Shared by evaluation and the served MLflow pyfunc, so both answer in exactly the same way.

A model answers either with the answer itself or with ``= derivation``: the world model's rule
written over values the document states (``= 17203888.06 - 11992130.54``), which
``worldgen.calc`` computes exactly. A derivation that does not compute is not an answer: it
reads as ``unknown``. The derivation is kept with the answer, so every figure can be audited.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import torch

from models.apr import APRTransformer, Generation
from models.certify import CERTIFICATE, check_certificate
from models.checkpoint import load_model
from models.guide import Guide
from models.tokenizer import UNK, Example, Tokenizer
from worldgen.calc import CalcError, compute

UNKNOWN = "unknown"
DERIVE = "="
MAX_ANSWER_TOKENS = 96  # an eGFR derivation from dates is ~70 tokens
NEVER_ABSTAIN = 1.1  # over any estimator score
# questions answered in one generation: answers/s at 256 vs 1 in benchmarks/batching.py
BATCH_SIZE = 256
DOCUMENTS_KEPT = 1024  # documents whose reading is kept for their next question


def target_text(answer: str, derivation: str = "") -> str:
    """What a model learns to write for a question: its derivation when it has one."""
    return f"{DERIVE} {derivation}" if derivation else answer


def resolve(written: str, finished: bool = True) -> tuple[str, str]:
    """(answer, derivation) from what the model wrote; a broken derivation answers unknown.

    An answer cut off before its end token is unknown too, however it reads: the head of a
    derivation can compute (``120 - 30`` of ``120 - 30 - 5``) and the head of a label can be
    another label (``stage 3`` of ``stage 3a``), and either would be an invented answer. So is
    one with a ``<unk>`` in it: a word the model could not write, or a pointer to a value the
    document does not have.
    """
    readable = finished and UNK not in written
    if not written.startswith(DERIVE):
        return (written if readable and written else UNKNOWN), ""
    # a pointer decodes as its own word: "round( 8.0 / 2, 2)" and "limitation(' texas', ' fraud')"
    # read better as "round(8.0 / 2, 2)" and "limitation('texas', 'fraud')"
    derivation = written[len(DERIVE) :].strip()
    for spaced, tight in (("( ", "("), ("(' ", "('"), (", ' ", ", '")):
        derivation = derivation.replace(spaced, tight)
    if not readable:
        return UNKNOWN, derivation
    try:
        return compute(derivation), derivation
    except CalcError:
        return UNKNOWN, derivation


@dataclass(frozen=True)
class Answer:
    text: str  # what the model says after abstention ("unknown" when it abstains)
    raw: str  # the answer greedy decoding produced (a derivation's computed value)
    derivation: str  # the derivation the model wrote, "" when it answered directly
    uncertainty: float  # max estimator score over the answer's tokens, in [0, 1]
    abstained: bool
    routed_fraction: float  # share of the answer's tokens that went through refinement
    prompt_tokens: int
    answer_tokens: int
    latency_s: float
    finished: bool = True  # the model wrote its end token (an unfinished answer reads unknown)
    error: str = ""  # why the model could not read the question ("" when it could)
    # the model's own baselines, compared with the estimator as abstention signals (issue 30):
    # 1 - the least probable answer token's probability, and the answer tokens' mean entropy
    prob_uncertainty: float = 1.0
    entropy: float = 0.0
    # share of the question's and document's word pairs training never wrote (None: the guide
    # cannot tell), and whether the served certificate's risk bound reaches this answer: it was
    # certified, the question is no more novel than its calibration questions, and it answered
    novelty: float | None = None
    guaranteed: bool = False

    @property
    def offered(self) -> str:
        """What the model answers before any score threshold: ``unknown`` where it could not
        read the question or the guide refused its answer (both say why in ``error``), else
        its raw answer. Certification and evaluation judge this, as serving gives it."""
        return UNKNOWN if self.error else self.raw

    def score(self, name: str) -> float:
        """The uncertainty called ``name`` (one of :data:`SCORES`)."""
        return {
            "estimator": self.uncertainty,
            "max_prob": self.prob_uncertainty,
            "entropy": self.entropy,
        }[name]


# abstention signals: the APR estimator's and the model's own two baselines
SCORES = ("estimator", "max_prob", "entropy")


@dataclass(frozen=True)
class StoredPolicy:
    """What a model's ``routing.json`` fixes for answering, read once: the abstention threshold
    (None until an evaluation chose one), the uncertainty it applies to (the estimator's unless
    certified otherwise), whether a feasible risk certificate stands behind it, and the novelty
    its calibration questions reached (questions more novel are answered without the guarantee)."""

    threshold: float | None
    score: str
    certified: bool
    novelty_limit: float | None

    @classmethod
    def read(cls, model_dir: str | Path) -> StoredPolicy:
        routing = json.loads((Path(model_dir) / "routing.json").read_text())
        value = routing.get("abstain_threshold")
        return cls(
            threshold=None if value is None else float(value),
            score=str(routing.get("abstain_score", "estimator")),
            certified=bool((routing.get("risk") or {}).get("feasible")),
            novelty_limit=routing.get("novelty_limit"),
        )


def stored_abstain_threshold(model_dir: str | Path) -> float | None:
    """The abstention threshold fixed for a model (None until an evaluation chose one)."""
    return StoredPolicy.read(model_dir).threshold


def within_reach(certified: bool, novelty_limit: float | None, novelty: float | None) -> bool:
    """Whether a certified guarantee reaches a question this novel: one no more novel than
    every calibration question (a model certified before novelty was kept: any question)."""
    if not certified:
        return False
    return novelty_limit is None or (novelty is not None and novelty <= novelty_limit)


def unreadable_text(name: str, value: object) -> str | None:
    """Why ``value`` cannot be read as the document or question, or ``None`` if it can: a
    number or an object sent as text is named as such, not taken for a missing one."""
    if isinstance(value, str):
        return None if value.strip() else f"{name} is missing or empty; send it as text"
    if value is None or (isinstance(value, float) and value != value):  # None or NaN: missing
        return f"{name} is missing or empty; send it as text"
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return f"{name} is not text but {type(value).__name__} {shown}; send it as text"


def unreadable_question(unknown: list[str]) -> str:
    """Why a question with words the model never read is not answered. A word it cannot read
    might be the one that decides the answer ("not", "previous", a unit); a guess would be a
    confident answer to another question, the worst outcome this product has."""
    shown = ", ".join(repr(w) for w in unknown[:3]) + (" ..." if len(unknown) > 3 else "")
    return (
        f"the question has words the model was not trained to read ({shown}); "
        "ask it in the words of the documents it was trained on"
    )


def unread(reason: str, prompt_tokens: int, start: float) -> Answer:
    """What a question the model cannot read answers, in evaluation and serving alike."""
    return Answer(
        text=UNKNOWN,
        raw=UNKNOWN,
        derivation="",
        uncertainty=1.0,
        abstained=True,
        routed_fraction=0.0,
        prompt_tokens=prompt_tokens,
        answer_tokens=0,
        latency_s=time.perf_counter() - start,
        finished=False,
        error=reason,
    )


class Answerer:
    def __init__(
        self,
        model: APRTransformer,
        tokenizer: Tokenizer,
        abstain_threshold: float = NEVER_ABSTAIN,
        guide: Guide | None = None,
        abstain_score: str = "estimator",
        certified: bool = False,
        novelty_limit: float | None = None,
    ):
        self.model = model.eval()
        self.tok = tokenizer
        self.abstain_threshold = abstain_threshold
        self.guide = guide
        self.abstain_score = abstain_score
        self.certified = certified  # a feasible risk certificate is fixed into the model
        self.novelty_limit = novelty_limit
        # several questions about one document (a batch, or requests in a row) read it once
        self._document = lru_cache(maxsize=DOCUMENTS_KEPT)(tokenizer.read_document)

    @classmethod
    def load(cls, model_dir: str | Path) -> Answerer:
        if (Path(model_dir) / CERTIFICATE).exists():  # a served folder answers only as certified
            check_certificate(model_dir)
        model, tok = load_model(model_dir)
        policy = StoredPolicy.read(model_dir)
        threshold = NEVER_ABSTAIN if policy.threshold is None else policy.threshold
        return cls(
            model,
            tok,
            threshold,
            Guide.load(model_dir),
            policy.score,
            policy.certified,
            policy.novelty_limit,
        )

    def __call__(self, document: object, question: object) -> Answer:
        return self.many([(document, question)])[0]

    @torch.no_grad()
    def many(
        self, pairs: Sequence[tuple[object, object]], batch_size: int = BATCH_SIZE
    ) -> list[Answer]:
        """The answer to each (document, question), in order. The questions it can read are
        answered ``batch_size`` at a time in one left-padded, KV-cached generation, each row
        decoded as it would be alone (one question is a batch of one); rows of similar length
        share a batch, so little is padded. Each answer's latency is its batch's time shared."""
        start = time.perf_counter()
        answers: list[Answer | None] = []
        todo: list[tuple[int, Example]] = []
        for i, (document, question) in enumerate(pairs):
            read = self._read(document, question, start)
            answers.append(read if isinstance(read, Answer) else None)
            if isinstance(read, Example):
                todo.append((i, read))
        for chunk in self._batches(todo, batch_size):
            t0 = time.perf_counter()
            written = self._generate([example for _, example in chunk])
            share = (time.perf_counter() - t0) / len(chunk)
            for (i, _), answer in zip(chunk, written, strict=True):
                answers[i] = self._checked(*pairs[i], replace(answer, latency_s=share))
        return [a for a in answers if a is not None]

    def _checked(self, document: object, question: object, answer: Answer) -> Answer:
        """``answer``, or ``unknown`` where the guide knows it cannot answer the question;
        with its novelty, and whether the guarantee reaches it."""
        assert isinstance(document, str) and isinstance(question, str)  # _read let it through
        novelty = self.guide.novelty(document, question) if self.guide else None
        reason = None
        if self.guide is not None and answer.text != UNKNOWN:
            reason = self.guide.why_not_answer(document, question, answer.text, answer.derivation)
        if reason is not None:
            return replace(answer, text=UNKNOWN, abstained=True, error=reason, novelty=novelty)
        reached = within_reach(self.certified, self.novelty_limit, novelty)
        return replace(answer, novelty=novelty, guaranteed=answer.text != UNKNOWN and reached)

    def _read(self, document: object, question: object, start: float) -> Answer | Example:
        """The prompt of a question the model can read, or why it cannot (an ``unknown``)."""
        for name, text in (("document", document), ("question", question)):
            reason = unreadable_text(name, text)
            if reason:
                return unread(reason, 0, start)
        assert isinstance(document, str) and isinstance(question, str)
        unknown = self.tok.unknown_pieces(question)
        if unknown:
            return unread(unreadable_question(unknown), 0, start)
        off_guide = self.guide.why_not(document, question) if self.guide else None
        if off_guide:
            return unread(off_guide, 0, start)
        if self.guide:
            question = self.guide.question_sentence_last(document, question)
        example = self.tok.encode_example(document, question, read=self._document(document))
        if len(example.ids) >= self.model.cfg.max_seq_len:
            reason = (
                f"document and question take {len(example.ids)} tokens, over the model's "
                f"max_seq_len {self.model.cfg.max_seq_len}; send a shorter document"
            )
            return unread(reason, len(example.ids), start)
        return example

    @torch.no_grad()
    def answer_scores(
        self, pairs: Sequence[tuple[object, object]], batch_size: int = BATCH_SIZE
    ) -> torch.Tensor:
        """The estimator's score at every answer token the model writes for these questions:
        the tokens inference routes, so the ones its routing threshold is calibrated on."""
        todo = [
            (i, r)
            for i, (d, q) in enumerate(pairs)
            if isinstance(r := self._read(d, q, 0.0), Example)
        ]
        scores = [torch.zeros(0)]
        for chunk in self._batches(todo, batch_size):
            gen, budget = self._generation([example for _, example in chunk])
            for row in range(len(chunk)):
                n = self._written(gen, row, int(budget[row]))[1]
                scores.append(gen.scores[row, :n].float())
        return torch.cat(scores)

    @staticmethod
    def _batches(
        todo: list[tuple[int, Example]], batch_size: int
    ) -> Iterator[list[tuple[int, Example]]]:
        """(place, prompt) pairs in batches: a document's questions side by side (it is read
        once for them), documents by length (little padding)."""
        todo = sorted(
            todo, key=lambda item: (item[1].document_len, item[1].ids[: item[1].document_len])
        )
        for k in range(0, len(todo), batch_size):
            yield todo[k : k + batch_size]

    def _generation(self, examples: list[Example]) -> tuple[Generation, torch.Tensor]:
        """One generation of these prompts, and each row's token budget. A document that
        several rows ask about is read once for them all (``APRTransformer.generate``'s
        ``shared``); then each row reads its question."""
        # each row's budget: the answer limit, or what is left of the model's positions
        budget = torch.tensor(
            [min(MAX_ANSWER_TOKENS, self.model.cfg.max_seq_len - len(e.ids)) for e in examples]
        )
        documents = [tuple(e.ids[: e.document_len]) for e in examples]
        distinct = list(dict.fromkeys(documents))
        if len(distinct) == len(documents):  # nothing shared: one left-padded prompt a row
            idx, pad = self._padded([e.ids for e in examples])
            gen = self.model.generate(
                idx, int(budget.max()), stop_token=self.tok.end_id, pad=pad, budget=budget
            )
            return gen, budget
        which = {d: i for i, d in enumerate(distinct)}
        prefixes, prefix_pad = self._padded([list(d) for d in distinct])
        of = torch.tensor([which[d] for d in documents])
        idx, pad = self._padded([e.ids[e.document_len :] for e in examples])
        gen = self.model.generate(
            idx,
            int(budget.max()),
            stop_token=self.tok.end_id,
            pad=pad,
            budget=budget,
            shared=(prefixes, prefix_pad, of),
        )
        return gen, budget

    def _padded(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows of ids left-padded to the longest -> (ids, each row's padding)."""
        longest = max(map(len, rows))
        idx = torch.tensor([[self.tok.pad_id] * (longest - len(r)) + r for r in rows])
        return idx, torch.tensor([longest - len(r) for r in rows])

    def _generate(self, examples: list[Example]) -> list[Answer]:
        gen, budget = self._generation(examples)
        assert gen.probs is not None and gen.entropy is not None  # generate() fills both
        return [self._answer(e, gen, b, int(budget[b])) for b, e in enumerate(examples)]

    def _written(self, gen: Generation, row: int, budget: int) -> tuple[list[int], int]:
        """A row's tokens and how many of them the answer is (up to its end token, if any)."""
        ids = gen.tokens[row, :budget].tolist()
        return ids, ids.index(self.tok.end_id) + 1 if self.tok.end_id in ids else len(ids)

    def _answer(self, example: Example, gen: Generation, row: int, budget: int) -> Answer:
        assert gen.probs is not None and gen.entropy is not None
        ids, n = self._written(gen, row, budget)
        finished = self.tok.end_id in ids[:n]
        # pointed values read as the document spells them; the rest is the model's lower case
        written = " ".join(self.tok.decode(ids[:n], slots=example.spelled).split())
        raw, derivation = resolve(written, finished)
        answer = Answer(
            text=raw,
            raw=raw,
            derivation=derivation,
            uncertainty=float(gen.scores[row, :n].max()) if n else 1.0,
            abstained=False,
            routed_fraction=float(gen.routed[row, :n].float().mean()) if n else 0.0,
            prompt_tokens=len(example.ids),
            answer_tokens=n,
            latency_s=0.0,
            finished=finished,
            prob_uncertainty=1.0 - float(gen.probs[row, :n].min()) if n else 1.0,
            entropy=float(gen.entropy[row, :n].mean()) if n else 0.0,
        )
        if raw != UNKNOWN and answer.score(self.abstain_score) > self.abstain_threshold:
            return replace(answer, text=UNKNOWN, abstained=True)
        return answer
