"""A base model's own tokenizer, with Veracity's structure and value pointers added after it.

A Hugging Face base (``models.hf``) reads text with the tokenizer it was trained with: its ids
keep their meaning, so its embeddings and head stay useful. Veracity's tokens (``<doc>``,
``<q>``, ``<a>``, ``<end>``, ``<unk>``, ``<pad>`` and the value slots ``<v0>``...) get the ids
after the base's vocabulary; the model learns them (``models.hf``: their own embedding rows
and head, the base's are not resized).

Everything else is the :class:`~models.tokenizer.Tokenizer`'s: documents are lower-cased and
each stated value gets a slot before its text, an answer that is a stated value is that slot,
derivations point at the values they use. Text between slots is encoded by the base tokenizer
as it is (spaces and line breaks included), and decoding concatenates the pieces back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer as BackendTokenizer

from infra.errors import first_line
from models.config import TrainingInputError
from models.tokenizer import SLOTS, SPECIALS, UNK, Tokenizer, normalize

BASE_FORMAT = "veracity-base-tokenizer/1"
_EXTRA: tuple[str, ...] = (*SPECIALS, *SLOTS)


class BaseTokenizer(Tokenizer):
    """The base's subword tokenizer (Hugging Face ``tokenizers``) and Veracity's tokens."""

    def __init__(self, backend: str, phrases: Iterable[str] = ()) -> None:
        # not Tokenizer.__init__: there is no Veracity vocabulary to build
        self.backend = backend  # the base's tokenizer.json, saved with the model
        self._backend = BackendTokenizer.from_str(backend)
        self._backend.no_truncation()
        self._backend.no_padding()
        self.base_size = self._backend.get_vocab_size(with_added_tokens=True)
        self.index = {tok: self.base_size + i for i, tok in enumerate(_EXTRA)}
        self.pad_id, self.doc_id, self.q_id, self.a_id, self.end_id, self.unk_id = (
            self.index[t] for t in SPECIALS
        )
        self.strict = False
        self.phrases = tuple(sorted({p.lower() for p in phrases}))
        self.subwords = None
        self._split = {}

    @classmethod
    def from_folder(cls, path: str | Path, phrases: Iterable[str] = ()) -> BaseTokenizer:
        """The tokenizer of a local model folder, read by ``transformers`` (which converts a
        slow tokenizer's files too); nothing is downloaded."""
        from transformers import AutoTokenizer  # the [hf] extra; only a --base run reads it

        try:
            hf = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as exc:
            why = first_line(exc)
            raise TrainingInputError(f"--base {path}: cannot read its tokenizer ({why})") from None
        backend = getattr(hf, "backend_tokenizer", None)
        if backend is None:
            raise TrainingInputError(f"--base {path}: its tokenizer has no fast (tokenizers) form")
        return cls(backend.to_str(), phrases)

    @property
    def has_slots(self) -> bool:
        return True

    @property
    def vocab_size(self) -> int:
        return self.base_size + len(_EXTRA)

    def __len__(self) -> int:
        return self.vocab_size

    def pieces(self, text: str) -> list[str]:
        return list(self._backend.encode(normalize(text), add_special_tokens=False).tokens)

    def unknown_pieces(self, text: str) -> list[str]:
        return []  # bytes or subwords: the base tokenizer reads any text

    def encode(self, text: str) -> list[int]:
        return self._ids(normalize(text))

    def _ids(self, text: str) -> list[int]:
        return list(self._backend.encode(text, add_special_tokens=False).ids) if text else []

    def _encode_marked(
        self, text: str, at: dict[int, tuple[int, int]], keep_values: bool
    ) -> list[int]:
        ids: list[int] = []
        done = 0
        for start in sorted(at):
            if start < done:
                continue
            end, k = at[start]
            ids += self._ids(text[done:start])
            ids.append(self.index[SLOTS[k]])
            done = start if keep_values else end
        return ids + self._ids(text[done:])

    def decode(
        self, ids: Iterable[int], skip_special: bool = True, slots: Sequence[str] = ()
    ) -> str:
        out: list[str] = []
        run: list[int] = []
        for i in map(int, ids):
            if i < self.base_size:
                run.append(i)
                continue
            if run:
                out.append(self._backend.decode(run, skip_special_tokens=False))
                run = []
            tok = _EXTRA[i - self.base_size]
            if tok in SLOTS:
                k = SLOTS.index(tok)
                out.append((slots[k] if k < len(slots) else UNK) if slots else tok)
            elif not skip_special or tok == UNK:
                out.append(tok)
        if run:
            out.append(self._backend.decode(run, skip_special_tokens=False))
        return "".join(out)

    def to_json(self) -> str:
        return json.dumps(
            {"format": BASE_FORMAT, "backend": self.backend, "phrases": list(self.phrases)}
        )


def load_tokenizer(text: str, strict: bool = False) -> Tokenizer:
    """A saved tokenizer of either kind: Veracity's own, or a base's (``BASE_FORMAT``)."""
    data = json.loads(text)
    if data.get("format") == BASE_FORMAT:
        return BaseTokenizer(data["backend"], data.get("phrases", ()))
    return Tokenizer.from_json(text, strict=strict)
