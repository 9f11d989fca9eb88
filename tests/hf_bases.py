"""Tiny Hugging Face bases built from configs, never downloaded: a GPT-2-style and a
Llama-style causal LM (2 layers, width 48) with a byte-level BPE tokenizer trained on the test
data, saved with ``save_pretrained`` as a user's own checkpoint folder would be."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from models.config import TrainConfig

KINDS = ("gpt2", "llama")
EOS = "<|endoftext|>"


def byte_bpe(texts: Iterable[str], size: int = 600) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=size, initial_alphabet=alphabet, special_tokens=[EOS])
    tok.train_from_iterator(texts, trainer)
    return tok


def tiny_model(kind: str, vocab: int, eos: int) -> PreTrainedModel:
    ends = {"bos_token_id": eos, "eos_token_id": eos}
    if kind == "gpt2":  # tied embeddings and head, learned positions
        return GPT2LMHeadModel(
            GPT2Config(n_layer=2, n_embd=48, n_head=4, vocab_size=vocab, n_positions=512, **ends)
        )
    return LlamaForCausalLM(  # rotary positions, grouped-query attention, an untied head
        LlamaConfig(
            num_hidden_layers=2,
            hidden_size=48,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=96,
            vocab_size=vocab,
            max_position_embeddings=512,
            tie_word_embeddings=False,
            **ends,
        )
    )


def save_base(kind: str, texts: Iterable[str], out: Path, padded_rows: int = 0) -> Path:
    """A base of ``kind`` with its tokenizer, in ``out`` (what ``--base`` reads);
    ``padded_rows``: embedding rows past the tokenizer's (as many real bases have)."""
    tok = byte_bpe(t.lower() for t in texts)
    model = tiny_model(kind, tok.get_vocab_size() + padded_rows, tok.token_to_id(EOS))
    model.save_pretrained(out)
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS).save_pretrained(out)
    return out


def base_run(base: Path, tuning: str, out: Path) -> TrainConfig:
    """A few steps of fitting APR on ``base``: what the tests train."""
    return TrainConfig(
        size="tiny",
        max_steps=3,
        batch_size=8,
        val_check_interval=3,
        base=str(base),
        base_tuning=tuning,
        out=str(out),
    )
