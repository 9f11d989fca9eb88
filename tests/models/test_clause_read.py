"""The pointer's clause read: a slot's key knows the words of its clause before it as a bag,
whichever words join a label to its value."""

from __future__ import annotations

import torch

from models.apr import APRTransformer
from models.config import APRConfig
from models.pointer import ClauseRead
from models.tokenizer import SLOTS, Tokenizer

D = 4
BREAKS = [0, 1, 2]  # markers and a value slot; 3.. are words


def clause(breaks: list[int] = BREAKS) -> ClauseRead:
    return ClauseRead(
        APRConfig(d_model=D, n_head=1, n_slots=1, clause_read=True, clause_breaks=breaks)
    )


def embedded(ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.tensor([ids])
    return torch.arange(len(ids) * D, dtype=torch.float).view(1, len(ids), D), idx


def test_each_position_reads_the_mean_of_its_clause_before_it() -> None:
    emb, idx = embedded([0, 5, 6, 2, 7, 1, 8])
    words, (s, n) = clause()(emb, idx, None, None)
    e = emb[0]
    assert torch.equal(words[0, 0], torch.zeros(D))  # nothing before
    assert torch.equal(words[0, 1], torch.zeros(D))  # the marker is not a word
    assert torch.equal(words[0, 2], e[1])
    assert torch.equal(words[0, 3], (e[1] + e[2]) / 2)  # the slot reads its two words
    assert torch.equal(words[0, 4], torch.zeros(D))  # a new clause after the slot
    assert torch.equal(words[0, 5], e[4])
    assert torch.equal(words[0, 6], torch.zeros(D))
    assert torch.equal(s[0], e[6]) and n.tolist() == [1.0]  # the clause still open


def test_the_order_and_the_joining_words_change_little() -> None:
    """The same label before a slot, joined by different words: the bags differ only by the
    joining words' share, where a window over positions would see everything shifted."""
    torch.manual_seed(0)
    table = torch.nn.Embedding(12, D)
    a, b = torch.tensor([[0, 5, 6, 7, 3, 2]]), torch.tensor([[0, 7, 5, 6, 4, 2]])
    read = clause()
    wa, _ = read(table(a), a, None, None)
    wb, _ = read(table(b), b, None, None)
    label = (table.weight[5] + table.weight[6] + table.weight[7]) / 4
    assert torch.allclose(wa[0, -1] - table.weight[3] / 4, label, atol=1e-6)
    assert torch.allclose(wb[0, -1] - table.weight[4] / 4, label, atol=1e-6)


def test_a_pass_carried_over_reads_as_one_pass() -> None:
    emb, idx = embedded([0, 5, 6, 2, 7, 8, 9, 1, 3, 4])
    whole, last = clause()(emb, idx, None, None)
    read = clause()
    first, carry = read(emb[:, :5], idx[:, :5], None, None)
    second, carry = read(emb[:, 5:6], idx[:, 5:6], None, carry)
    third, end = read(emb[:, 6:], idx[:, 6:], None, carry)
    assert torch.allclose(torch.cat([first, second, third], 1), whole)
    assert torch.allclose(end[0], last[0]) and torch.equal(end[1], last[1])


def test_padding_is_not_a_word_nor_the_end_of_a_clause() -> None:
    emb, idx = embedded([9, 9, 0, 5, 2])
    real = torch.tensor([[False, False, True, True, True]])
    words, _ = clause()(emb.masked_fill(~real.unsqueeze(-1), 0.0), idx, real, None)
    assert torch.equal(words[0, 4], emb[0, 3])
    # a carried clause read on over padding (ids 0, a marker's) into the row's next tokens
    emb, idx = embedded([0, 0, 6, 2])
    real = torch.tensor([[False, False, True, True]])
    carry = (torch.ones(1, D), torch.tensor([1.0]))
    words, _ = clause()(emb, idx, real, carry)
    assert torch.equal(words[0, 3], (emb[0, 2] + 1) / 2)


def test_the_tokenizer_breaks_clauses_at_values_and_stops_not_where_a_label_joins() -> None:
    tok = Tokenizer.fit(["Revenue: $1,200.00. Cost was $700 ; net | 5"], subwords=True)
    breaks = set(tok.clause_breaks())
    assert {tok.index[p] for p in (SLOTS[0], "1", "##2", "##.")} <= breaks
    joins = (":", "##:", ";", "|", "revenue", "$")
    assert not {tok.index[p] for p in joins if p in tok.index} & breaks


def test_mixed_into_every_input_the_read_leaves_padding_empty() -> None:
    cfg = {
        "d_model": 8,
        "n_head": 1,
        "n_layer": 1,
        "probe_layer": 0,
        "vocab_size": 20,
        "n_slots": 2,
    }
    mixed = APRTransformer(
        APRConfig(**cfg, slot_offset=1, clause_read=True, clause_mix=True, clause_breaks=BREAKS)
    )
    words, real = torch.randn(1, 3, 8), torch.tensor([[False, True, True]])
    out = mixed.clause_input(words, real)
    assert torch.equal(out[0, 0], torch.zeros(8)) and bool(out[0, 1:].abs().sum(-1).gt(0).all())
    # a clause read only a pointer's keys would have: nothing to mix without one
    assert APRTransformer(APRConfig(**cfg, clause_mix=True)).clause_in is None
