import pytest

from models.tokenizer import (
    SLOTS,
    SPECIALS,
    Tokenizer,
    UnknownTokenError,
    normalize,
    question_last,
    spellings,
)

ANSWERS = ["yes", "no", "unknown", "stage 3a", "2024-03-01", "132", "type2 diabetes", "132.5"]
CORPUS = [
    "Patient P-17 was diagnosed with Type2 diabetes on 2024-03-01.",
    "Tumour at stage 3a; systolic pressure 132.5 mmHg. Answer: yes, no or unknown.",
    "What stage is it?",
]


@pytest.fixture
def tok() -> Tokenizer:
    return Tokenizer.fit(CORPUS)


def test_pieces_split_digits_and_punctuation(tok: Tokenizer) -> None:
    assert [tok.vocab[i] for i in tok.encode("132.5")] == ["1", "##3", "##2", "##.", "##5"]
    assert [tok.vocab[i] for i in tok.encode("2024-03-01")][:6] == [
        "2",
        "##0",
        "##2",
        "##4",
        "##-",
        "##0",
    ]
    assert [tok.vocab[i] for i in tok.encode("Type2 diabetes")] == ["type", "##2", "diabetes"]


@pytest.mark.parametrize("answer", ANSWERS)
def test_canonical_answers_round_trip(tok: Tokenizer, answer: str) -> None:
    assert tok.decode(tok.encode(answer)) == answer


def test_round_trip_is_normalised_text(tok: Tokenizer) -> None:
    text = "  Patient  P-17 was\tdiagnosed with TYPE2 diabetes on 2024-03-01. "
    assert tok.decode(tok.encode(text)) == normalize(text)
    assert normalize(text) == "patient p-17 was diagnosed with type2 diabetes on 2024-03-01."


def test_vocab_layout_and_any_number_encodes(tok: Tokenizer) -> None:
    assert tuple(tok.vocab[: len(SPECIALS)]) == SPECIALS
    assert (tok.pad_id, tok.end_id, tok.unk_id) == (0, 4, 5)
    assert tok.decode(tok.encode("9876543210")) == "9876543210"  # digits always in vocab


def test_encode_example(tok: Tokenizer) -> None:
    ids, start, *_ = tok.encode_example("Stage 3a.", "Stage?", "stage 3a")
    assert ids[0] == tok.doc_id and ids[start - 1] == tok.a_id and ids[-1] == tok.end_id
    assert tok.decode(ids[start:]) == "stage 3a"
    assert tok.decode(ids) == "stage 3a. stage? stage 3a"
    prompt, pstart, *_ = tok.encode_example("Stage 3a.", "Stage?")
    assert prompt == ids[:start] and pstart == len(prompt)


@pytest.mark.parametrize(
    ("asked", "read"),
    [
        (
            "What stage is it? Answer from the document only.",
            "Answer from the document only. What stage is it?",
        ),
        ("Question: What stage is it?  Be brief ", "Be brief Question: What stage is it?"),
        (
            "Is it stage 3a? Or 3b? Say unknown if unsure.",
            "Say unknown if unsure. Is it stage 3a? Or 3b?",
        ),
        ("What stage is it?", "What stage is it?"),
        ("Stage of the tumour", "Stage of the tumour"),
    ],
)
def test_words_after_the_question_are_read_before_it(tok: Tokenizer, asked: str, read: str) -> None:
    """The answer is cued right after the question: an instruction written after it is read as
    a lead-in, the same prompt as if it had been written first."""
    assert question_last(asked) == read
    assert tok.encode_example("Stage 3a.", asked).ids == tok.encode_example("Stage 3a.", read).ids


def test_unknown_tokens(tok: Tokenizer) -> None:
    assert tok.encode("zebra") == [tok.unk_id]
    assert tok.decode(tok.encode("yes zebra")) == "yes <unk>"
    strict = Tokenizer.fit(CORPUS, strict=True)
    with pytest.raises(UnknownTokenError) as err:
        strict.encode("yes zebra")
    assert err.value.token == "zebra"
    assert str(err.value) == "token 'zebra' is not in the tokenizer vocabulary"
    assert "\n" not in str(err.value)


def test_json_round_trip(tok: Tokenizer) -> None:
    again = Tokenizer.from_json(tok.to_json())
    assert again.vocab == tok.vocab
    assert again.encode(CORPUS[0]) == tok.encode(CORPUS[0])
    with pytest.raises(ValueError):
        Tokenizer.from_json('{"vocab": []}')


def test_stated_values_get_slots_and_answers_point_at_them(tok: Tokenizer) -> None:
    doc = "Patient P-17 was diagnosed with Type2 diabetes on 2024-03-01. Pressure 132.5, stage 3a 132.5."
    ex = tok.encode_example(doc, "What stage is it?", "132.5")
    # dates and numbers are values; "p-17", "type2" and "3a" are words
    assert ex.slots == ("2024-03-01", "132.5")
    pieces = [tok.vocab[i] for i in ex.ids]
    assert pieces[: ex.answer_start].count(SLOTS[1]) == 2  # equal values share a slot
    assert pieces[pieces.index(SLOTS[0]) + 1 : pieces.index(SLOTS[0]) + 3] == ["2", "##0"]
    assert pieces[ex.answer_start :] == [SLOTS[1], "<end>"]  # one pointer, not five digits
    assert tok.decode(ex.ids[ex.answer_start :], slots=ex.slots) == "132.5"
    assert tok.decode(ex.ids[: ex.answer_start]) == normalize(doc) + " what stage is it?"
    # an answer that is not stated is spelled out; a slot the document lacks reads as <unk>
    other = tok.encode_example(doc, "What stage is it?", "stage 3a")
    assert tok.decode(other.ids[other.answer_start :], slots=other.slots) == "stage 3a"
    assert tok.decode([tok.index[SLOTS[5]]], slots=ex.slots) == "<unk>"


def test_stated_category_labels_are_values_too() -> None:
    doc = "Assessment: type 2 diabetes. Medication: none. Complications: none. Ruling: not liable. SBP: 135."
    labels = ["type 2 diabetes", "none", "not liable", "liable", "New York"]
    tok = Tokenizer.fit([doc, "What is the ruling? liable new york"], phrases=labels)
    ex = tok.encode_example(doc, "What is the ruling?", "not liable")
    # the longest label wins, the "2" inside a label is not a number, equal labels share a slot
    assert ex.slots == ("type 2 diabetes", "none", "not liable", "135")
    assert [tok.vocab[i] for i in ex.ids[ex.answer_start :]] == [SLOTS[2], "<end>"]
    assert tok.decode(ex.ids[ex.answer_start :], slots=ex.slots) == "not liable"
    assert tok.decode(ex.ids[: ex.answer_start]) == normalize(doc) + " what is the ruling?"
    # a label the document does not state is written out word by word
    assert tok.encode_answer("liable", ex.slots) == [tok.index["liable"]]
    assert tok.encode_answer("New York", ex.slots) == tok.encode("new york")


def test_labels_survive_the_tokenizer_file() -> None:
    tok = Tokenizer.fit(["Sector: retail."], phrases=["retail"])
    again = Tokenizer.from_json(tok.to_json())
    assert again.phrases == ("retail",)
    assert again.encode_document("Sector: retail.") == tok.encode_document("Sector: retail.")
    # a tokenizer file written before labels were values still loads, and slots numbers only
    old = Tokenizer.from_json(tok.to_json().replace("/2", "/1").replace('"retail"]', "]"))
    assert old.encode_document("Sector: retail. 7")[1] == ("7",)


def test_in_a_derivation_only_a_quoted_label_is_a_pointer() -> None:
    doc = "Assessment: type 2 diabetes. Current medication: metformin. eGFR was 52."
    rule = "= 52 >= 30 and indicated(metformin, 'type 2 diabetes')"
    tok = Tokenizer.fit([doc, rule], phrases=["type 2 diabetes", "metformin"])
    _, slots = tok.encode_document(doc)
    pieces = [tok.vocab[i] for i in tok.encode_answer(rule, slots)]
    assert pieces.count(SLOTS[0]) == 1 and SLOTS[1] not in pieces  # the drug is the rule's word
    assert "##metformin" in pieces  # glued to "indicated("
    assert tok.decode(tok.encode_answer(rule, slots), slots=slots) == (
        "= 52 >= 30 and indicated(metformin, ' type 2 diabetes')"
    )


def test_pointed_values_keep_the_documents_spelling() -> None:
    doc = "The case was heard under New York law. Cause of action: fraud. Filed 2019-03-01."
    tok = Tokenizer.fit([doc, "which law?"], phrases=["New York", "fraud"])
    ex = tok.encode_example(doc, "Which law?", "new york")
    assert ex.slots == ("new york", "fraud", "2019-03-01")  # what the model sees: lower case
    assert ex.spelled == ("New York", "fraud", "2019-03-01")  # what an answer says
    assert tok.decode(ex.ids[ex.answer_start :], slots=ex.spelled) == "New York"
    # where lower-casing changes the text's length, the values stay as the model sees them
    assert spellings("İ New York", ("new york",)) == ("new york",)


def test_subwords_are_the_same_in_every_process() -> None:
    """DDP ranks each fit the tokenizer: the BPE must not depend on the process (hash seeds)."""
    import subprocess
    import sys

    code = (
        "from collections import Counter; from models.tokenizer import fit_subwords, pieces;"
        "c = Counter(); [c.update(pieces(t)) for t in "
        "['the amount amounted to reporting', 'reported amounts recorded noted', 'a b ab ba']];"
        "print(fit_subwords(c))"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(3)
    }
    assert len(runs) == 1
    tok = Tokenizer.fit(["the amount amounted to reporting"], subwords=True)
    assert tok.pieces("amounts") == ["amount", "##s"] and tok.unknown_pieces("Größe 😀") == []
