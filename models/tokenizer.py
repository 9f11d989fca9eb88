"""Tokenizer over an open vocabulary, fitted on the training corpus.

Open vocabulary (format /3, what training writes): a word is read as byte-level BPE pieces
learned on the training split with Hugging Face ``tokenizers`` (``fit_subwords``): every
training word of any use whole, a word training never saw as pieces it did ("amounted" ->
amount ##ed), any other character as its UTF-8 bytes (``<0xC3>``). Nothing a person writes is
refused or turned into ``<unk>``. Tokenizers saved before (/2, /1) are word-level over a closed
vocabulary and keep reading as they did.

Normalisation (what ``decode(encode(text))`` gives back): the text is lower-cased, runs of
whitespace become one space and the ends are stripped. Anything else survives the round trip
as long as every piece is in the vocabulary.

Pieces (word level, then each word split as above): a run of letters is one word; every digit
is its own piece ("132" -> 1 3 2, so numbers
never grow the vocabulary); every other non-space character is its own piece ("-", ".", ","). A
piece written directly after the previous one, with no space between, is stored in its
continuation form with a ``##`` prefix (as in WordPiece), which is how decode knows where the
spaces were: "type2 diabetes" -> type ##2 diabetes; "2024-03-01" -> 2 ##0 ##2 ##4 ##- ##0 ...
Digits are always in the vocabulary in both forms, so any number can be encoded.

Value slots (a pointer vocabulary, as in number-mapping math solvers): every number or date
the document states gets a slot token ``<v0>``, ``<v1>``, ... (in order of first appearance,
equal values sharing one) written just before its digits, which stay, so magnitudes remain
readable. An answer that is exactly a stated value is encoded as that one slot token, and
decoding resolves slots against the document's values. Copying a 10-digit amount is then one
pointer step instead of ten exact digit copies, and the model cannot emit a figure that is
not in the document unless it spells it out digit by digit.

Category labels the world model can state (``phrases``: "type 2 diabetes", "term loan") are
values too: each occurrence gets a slot like a number, so quoting the sector is a pointer to
where the document names it, not a guess among the sectors the model has seen. The longest
phrase wins ("not liable" over "liable"), and the "2" of "type 2 diabetes" is not a number.
In an answer a label is a pointer when it is the whole answer or quoted in a derivation.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import NamedTuple

from tokenizers import Tokenizer as HFTokenizer
from tokenizers.models import BPE
from tokenizers.pre_tokenizers import WhitespaceSplit

from worldgen.values import read_values

PAD, DOC, Q, A, END, UNK = "<pad>", "<doc>", "<q>", "<a>", "<end>", "<unk>"
SPECIALS: tuple[str, ...] = (PAD, DOC, Q, A, END, UNK)
MAX_SLOTS = 32
SLOTS: tuple[str, ...] = tuple(f"<v{i}>" for i in range(MAX_SLOTS))
_SLOT_NUMBER = {slot: k for k, slot in enumerate(SLOTS)}
CONT = "##"
_PIECE = re.compile(r"[^\W\d_]+|\d|[^\w\s]|_")
_DIGITS = [str(d) for d in range(10)]
FORMAT = "veracity-word-tokenizer/3"  # /3 adds subwords; /2 (phrases) and /1 files still load
FORMATS = (FORMAT, "veracity-word-tokenizer/2", "veracity-word-tokenizer/1")
BYTES: tuple[str, ...] = tuple(f"<0x{b:02X}>" for b in range(256))
_BYTE_VALUE = {tok: b for b, tok in enumerate(BYTES)}
_ASCII_RUN = re.compile(r"[a-z]+|.", re.DOTALL)
SUBWORD_VOCAB = 1000  # the BPE's cap: every training word whole, and the merges on the way


class UnknownTokenError(KeyError):
    """A piece outside the vocabulary was met in strict mode."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token

    def __str__(self) -> str:
        return f"token {self.token!r} is not in the tokenizer vocabulary"


class Example(NamedTuple):
    ids: list[int]
    answer_start: int  # index of the first answer token (== len(ids) when no answer given)
    slots: tuple[str, ...] = ()  # the document's stated values, by slot number
    spelled: tuple[str, ...] = ()  # the same values as the document spells them ("New York")
    # how many leading ids are the document's: a prefix every question about it shares
    document_len: int = 0


def normalize(text: str) -> str:
    """The canonical form that encode/decode round-trips: lower-case, single spaces."""
    return " ".join(text.lower().split())


def question_last(question: str) -> str:
    """The question with what follows its last question mark moved in front of it: "What was
    revenue? Answer from the document only." reads as "Answer from the document only. What was
    revenue?". The answer is cued right after the question; words a person adds after it (an
    instruction, a reminder) would stand where no training example puts any, and a model read
    such questions as unanswerable (issue 29). Moved, they are one more lead-in, as training has."""
    at = question.rfind("?")
    tail = question[at + 1 :].strip() if at >= 0 else ""
    return f"{tail} {question[: at + 1].strip()}" if tail else question


def spellings(document: str, values: Sequence[str]) -> tuple[str, ...]:
    """Each (lower-case) value as the document first writes it, so an answer that points at
    "New York" says "New York"; the value itself where lower-casing changed the text's length."""
    lower = document.lower()
    if len(lower) != len(document):
        return tuple(values)
    return tuple(document[at : at + len(v)] if (at := lower.find(v)) >= 0 else v for v in values)


def pieces(text: str) -> list[str]:
    """Split normalised text into pieces, marking those glued to the previous one."""
    text = text.lower()
    out: list[str] = []
    end = -1
    for m in _PIECE.finditer(text):
        glued = m.start() == end
        out.append(CONT + m.group() if glued else m.group())
        end = m.end()
    return out


class Tokenizer:
    def __init__(
        self,
        vocab: Sequence[str],
        strict: bool = False,
        phrases: Iterable[str] = (),
        subwords: str | None = None,
    ) -> None:
        if tuple(vocab[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"vocabulary must start with the special tokens {SPECIALS}")
        if len(set(vocab)) != len(vocab):
            raise ValueError("vocabulary has duplicate entries")
        self.vocab: list[str] = list(vocab)
        self.index: dict[str, int] = {tok: i for i, tok in enumerate(self.vocab)}
        self.strict = strict
        self.phrases: tuple[str, ...] = tuple(sorted({p.lower() for p in phrases}))
        self.subwords = subwords  # a byte-level BPE (Hugging Face tokenizers JSON), or None
        self._bpe = HFTokenizer.from_str(subwords) if subwords else None
        self._split: dict[str, tuple[str, ...]] = {}

    # ids of the special tokens, for the model and the data pipeline
    pad_id, doc_id, q_id, a_id, end_id, unk_id = range(len(SPECIALS))

    @classmethod
    def fit(
        cls,
        texts: Iterable[str],
        min_count: int = 1,
        strict: bool = False,
        phrases: Iterable[str] = (),
        subwords: bool = False,
    ) -> Tokenizer:
        """Build the vocabulary from a corpus; order is by frequency, then alphabetical.
        ``phrases``: category labels a document states, slotted like numbers. ``subwords``: an
        open vocabulary, words as byte-level BPE pieces learned on the corpus (``fit_subwords``)
        so a word training never saw is read as pieces it did, never as ``<unk>``."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(pieces(text))
        # digits and single letters in both forms: any number, and codes such as "3b", encode
        always = {p for c in (*_DIGITS, *string.ascii_lowercase) for p in (c, CONT + c)}
        bpe = fit_subwords(counts) if subwords else None
        if bpe is not None:  # words are BPE pieces now; any byte, in both forms, is a piece
            counts = Counter({t: c for t, c in counts.items() if not _is_word(t)})
            pieces_ = set(json.loads(bpe)["model"]["vocab"]) | set(BYTES)
            always |= {p for t in pieces_ for p in (t, CONT + t.removeprefix(CONT))}
        kept = {t for t, c in counts.items() if c >= min_count} | always
        kept -= set(SPECIALS) | set(SLOTS)
        ordered = sorted(kept, key=lambda t: (-counts.get(t, 0), t))
        return cls([*SPECIALS, *SLOTS, *ordered], strict=strict, phrases=phrases, subwords=bpe)

    def pieces(self, text: str) -> list[str]:
        """``pieces(text)``, each word as its subword pieces when the tokenizer has them."""
        if self._bpe is None:
            return pieces(text)
        return [sub for piece in pieces(text) for sub in self._expand(piece)]

    def _expand(self, piece: str) -> tuple[str, ...]:
        """A word-level piece as the pieces the vocabulary has: itself when known (digits,
        punctuation), a word's BPE pieces, any other character's UTF-8 bytes; the first keeps
        the piece's glue, the rest are glued to it."""
        found = self._split.get(piece)
        if found is not None:
            return found
        glued, bare = piece.startswith(CONT), piece.removeprefix(CONT)
        if not _is_word(piece) and piece in self.index:
            out: list[str] = [piece]
        else:
            out = []
            for run in _ASCII_RUN.findall(bare):
                if run.isascii() and run.isalpha():
                    assert self._bpe is not None
                    out += self._bpe.encode(run, add_special_tokens=False).tokens
                else:
                    out += [BYTES[b] for b in run.encode()]
            out = [t if i == 0 or t.startswith(CONT) else CONT + t for i, t in enumerate(out)]
            out[0] = CONT + out[0].removeprefix(CONT) if glued else out[0].removeprefix(CONT)
        self._split[piece] = found = tuple(out)
        return found

    @property
    def has_slots(self) -> bool:
        return SLOTS[0] in self.index

    def clause_breaks(self) -> list[int]:
        """Ids after which a clause's words start afresh (``models.pointer.ClauseRead``):
        the markers, value slots, digits and the marks that end a sentence; not ",", ";",
        ":", "|" or "-", which join a label to its value ("Revenue, $1.2M.")."""
        marks = [m for c in ".!?" for m in (c, CONT + c)]
        digits = [d for c in _DIGITS for d in (c, CONT + c)]
        pieces = (*SPECIALS, *SLOTS, *digits, *marks)
        return sorted(self.index[p] for p in pieces if p in self.index)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def token_id(self, piece: str) -> int:
        found = self.index.get(piece)
        if found is not None:
            return found
        if self.strict:
            raise UnknownTokenError(piece)
        return self.unk_id

    def unknown_pieces(self, text: str) -> list[str]:
        """The pieces of ``text`` outside the vocabulary, once each, in order (without "##")."""
        found = [p for p in self.pieces(text) if p not in self.index]
        return list(dict.fromkeys(p.removeprefix(CONT) for p in found))

    def encode(self, text: str) -> list[int]:
        return [self.token_id(p) for p in self.pieces(text)]

    def encode_document(self, text: str) -> tuple[list[int], tuple[str, ...]]:
        """The document's ids with a slot token before each stated value, and the slot values."""
        if not self.has_slots:
            return self.encode(text), ()
        text = text.lower()
        slots: dict[str, int] = {}
        at: dict[int, tuple[int, int]] = {}
        for v in read_values(text, self.phrases):
            if v.canonical not in slots and len(slots) == MAX_SLOTS:
                continue  # past the last slot a value is only its digits
            at[v.start] = (v.end, slots.setdefault(v.canonical, len(slots)))
        return self._encode_marked(text, at, keep_values=True), tuple(slots)

    def encode_answer(self, answer: str, slots: Sequence[str]) -> list[int]:
        """The answer's pieces with every stated value in it as its slot token instead: a
        stated answer is one slot, a derivation points at each value it uses."""
        text = normalize(answer)
        number = {value: k for k, value in enumerate(slots)}
        at = {
            v.start: (v.end, number[v.canonical])
            for v in read_values(text, self.phrases)
            if v.canonical in number and self._stands_as_value(text, v.start, v.end)
        }
        return self._encode_marked(text, at, keep_values=False)

    def _stands_as_value(self, text: str, start: int, end: int) -> bool:
        """Numbers always; a label only as the whole answer or quoted in a derivation, where
        an unquoted word is the rule's own (``indicated(metformin, 'type 2 diabetes')``)."""
        if text[start:end] not in self.phrases or (start, end) == (0, len(text)):
            return True
        return text[start - 1 : start] == "'" and text[end : end + 1] == "'"

    def _encode_marked(
        self, text: str, at: dict[int, tuple[int, int]], keep_values: bool
    ) -> list[int]:
        """Pieces of ``text`` with slot ``k`` written where ``at`` maps a start to (end, k):
        before the value's own pieces, or (``keep_values=False``) instead of them."""
        ids: list[int] = []
        end = skip_to = -1
        for m in _PIECE.finditer(text):
            if m.start() < skip_to:
                continue
            marked = at.get(m.start())
            if marked is not None:
                ids.append(self.index[SLOTS[marked[1]]])
                if not keep_values:
                    end = skip_to = marked[0]
                    continue
            piece = CONT + m.group() if m.start() == end else m.group()
            if self._bpe is None:
                ids.append(self.token_id(piece))
            else:
                ids += [self.token_id(p) for p in self._expand(piece)]
            end = m.end()
        return ids

    def decode(
        self, ids: Iterable[int], skip_special: bool = True, slots: Sequence[str] = ()
    ) -> str:
        """Rejoin pieces; ``##`` pieces attach to the previous one without a space.

        With ``skip_special`` the structural tokens (<pad> <doc> <q> <a> <end>) are dropped;
        <unk> is always written out so a reader can see something was lost. A slot token reads
        as its value from ``slots``; one the document does not have reads as <unk>.
        """
        out: list[str] = []
        pending = bytearray()  # UTF-8 bytes of a character the vocabulary has no piece for
        for i in ids:
            tok = self.vocab[int(i)]
            byte = _BYTE_VALUE.get(tok.removeprefix(CONT))
            if byte is not None:
                if not pending and not tok.startswith(CONT):
                    out.append("")
                pending.append(byte)
                continue
            if pending:
                text = pending.decode("utf-8", errors="replace")
                out[-1:] = [(out[-1] if out else "") + text]
                pending.clear()
            k = _SLOT_NUMBER.get(tok)
            if k is not None:
                if slots:
                    out.append(slots[k] if k < len(slots) else UNK)
                elif not skip_special:
                    out.append(tok)
                continue
            if skip_special and tok in SPECIALS and tok != UNK:
                continue
            if tok.startswith(CONT) and out:
                out[-1] += tok[len(CONT) :]
            else:
                out.append(tok[len(CONT) :] if tok.startswith(CONT) else tok)
        if pending:
            out[-1:] = [(out[-1] if out else "") + pending.decode("utf-8", errors="replace")]
        return " ".join(out)

    def encode_question(self, question: str) -> list[int]:
        """``<q> question <a>``, the question read last (``question_last``)."""
        return [self.q_id, *self.encode(question_last(question)), self.a_id]

    def read_document(self, document: str) -> Example:
        """``<doc> document`` with its values: what every question about it starts with."""
        doc, slots = self.encode_document(document)
        ids = [self.doc_id, *doc]
        return Example(ids, 0, slots, spellings(document, slots), len(ids))

    def encode_example(
        self, document: str, question: str, answer: str | None = None, read: Example | None = None
    ) -> Example:
        """``<doc> document <q> question <a> answer <end>``; without an answer, ends at <a>.
        ``read``: the document's ``read_document``, when several questions share it."""
        head = self.read_document(document) if read is None else read
        ids = [*head.ids, *self.encode_question(question)]
        start = len(ids)
        if answer is not None:
            ids += [*self.encode_answer(answer, head.slots), self.end_id]
        return Example(ids, start, head.slots, head.spelled, len(head.ids))

    def to_json(self) -> str:
        data = {"format": FORMAT, "vocab": self.vocab, "phrases": list(self.phrases)}
        return json.dumps({**data, "subwords": self.subwords})

    @classmethod
    def from_json(cls, text: str, strict: bool = False) -> Tokenizer:
        data = json.loads(text)
        if data.get("format") not in FORMATS:
            raise ValueError(f"not a Veracity tokenizer file (format={data.get('format')!r})")
        phrases = data.get("phrases", ())
        return cls(data["vocab"], strict=strict, phrases=phrases, subwords=data.get("subwords"))


def _is_word(piece: str) -> bool:
    return piece.removeprefix(CONT)[:1].isalpha()


def fit_subwords(counts: Counter[str], size: int = SUBWORD_VOCAB) -> str:
    """A BPE over the corpus's words (ASCII letters; any other character is read as its
    bytes), with ``##`` marking a piece inside a word, saved as Hugging Face ``tokenizers``
    saves one and applied by it. Every training word of enough use ends up whole; a new word
    splits into pieces seen in training ("amounted" -> amount ##ed).

    The merges are learned here rather than by ``tokenizers``' trainer, whose ties between
    equally frequent pairs fall differently in every process: two DDP ranks (or two runs of one
    config) must build the same vocabulary. Ties go to the alphabetically first pair."""
    words: Counter[str] = Counter()
    for piece, n in counts.items():
        for run in _ASCII_RUN.findall(piece.removeprefix(CONT)):
            if run.isascii() and run.isalpha():
                words[run] += n
    splits = {w: [w[0], *(CONT + c for c in w[1:])] for w in words}
    letters = (p for c in string.ascii_lowercase for p in (c, CONT + c))
    vocab = {p: i for i, p in enumerate(letters)}
    merges: list[tuple[str, str]] = []
    while len(vocab) < size:
        pairs: Counter[tuple[str, str]] = Counter()
        for word, n in words.items():
            parts = splits[word]
            for pair in pairwise(parts):
                pairs[pair] += n
        if not pairs:
            break
        a, b = min(pairs, key=lambda pair: (-pairs[pair], pair))
        joined = a + b.removeprefix(CONT)
        merges.append((a, b))
        vocab.setdefault(joined, len(vocab))
        for parts in splits.values():
            i = 0
            while i < len(parts) - 1:
                if parts[i] == a and parts[i + 1] == b:
                    parts[i : i + 2] = [joined]
                i += 1
    bpe = HFTokenizer(BPE(vocab=vocab, merges=merges, continuing_subword_prefix=CONT))
    bpe.pre_tokenizer = WhitespaceSplit()
    return str(bpe.to_str())
