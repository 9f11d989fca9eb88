"""A Hugging Face causal LM as APR's base stack: ``veracity train --base PATH``.

The base (a GPT-2-, Llama-, Qwen-... family checkpoint in a local folder, read with
``from_pretrained(PATH, local_files_only=True)``: nothing is ever downloaded) replaces the
built-in embeddings, blocks and head; everything APR adds stays as it is. The estimator reads
the base's hidden state after block ``probe_layer``, routed tokens go through the fp32
refinement layers and the base's own head, the pointer copies stated values, and the modes
dense / random / all / apr keep their meaning (``models.apr``).

Veracity's tokens (structure and value slots, ``models.base_tokenizer``) are not added to the
base's vocabulary: they have their own embedding rows and head rows here, so a ``frozen``
base is frozen to the last weight. Tuning: ``frozen`` (the base's weights fixed; APR's parts
and Veracity's tokens learn), ``lora`` (``peft`` adapters on the base's attention, merged
into its weights at export) or ``full``.

A trained model's folder holds the merged weights (safetensors) and the base's architecture
in ``config.json``: serving rebuilds it from that, without the base's folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, cast

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from torch import Tensor, nn
from transformers import AutoConfig, AutoModelForCausalLM, DynamicCache, PreTrainedModel
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from infra.errors import first_line
from models.apr import APRTransformer
from models.config import TUNINGS, APRConfig, TrainingInputError
from models.layers import KVCache
from models.pointer import PointerCache
from models.precision import base_precision
from models.tokenizer import SLOTS, SPECIALS

N_EXTRA = len(SPECIALS) + len(SLOTS)  # Veracity's tokens, after the base's vocabulary


def read_base(path: str) -> PreTrainedModel:
    """The causal LM in a local folder, or a one-line error saying what is wrong with it."""
    try:  # TrainConfig.check has seen its config.json
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise TrainingInputError(
            f"--base {path}: cannot load a causal LM ({first_line(exc)})"
        ) from None
    if getattr(model, model.base_model_prefix, None) is None:
        raise TrainingInputError(f"--base {path}: {type(model).__name__} has no decoder stack")
    return model


def base_fields(path: str, tuning: str, max_seq_len: int) -> dict[str, Any]:
    """The APRConfig fields a base fixes (its widths, depth, positions, and a record of what
    it is), read from its config alone; the run's size gives the rest."""
    try:
        c = AutoConfig.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise TrainingInputError(
            f"--base {path}: cannot read its config ({first_line(exc)})"
        ) from None
    if c.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise TrainingInputError(
            f"--base {path}: a {c.model_type!r} model is not a causal LM; APR fits decoder "
            "language models (GPT-2, Llama, Qwen, Mistral, ...)"
        )
    arch = c.to_dict()
    layers = int(c.num_hidden_layers)
    positions = int(getattr(c, "max_position_embeddings", 0) or max_seq_len)
    digest = hashlib.sha256(json.dumps(arch, sort_keys=True, default=str).encode()).hexdigest()
    record = {
        "path": str(Path(path).resolve()),
        "model_type": c.model_type,
        "config_sha256": digest,
        "tuning": tuning,
        "architecture": arch,
    }
    return {
        "d_model": int(c.hidden_size),
        "n_head": int(c.num_attention_heads),
        "n_layer": layers,
        "probe_layer": max(0, layers // 2 - 1),
        "max_seq_len": min(max_seq_len, positions),
        "local_window": 0,  # the base reads its own context
        "clause_read": False,
        "base": record,
    }


class BaseCache(KVCache):
    """The base's key/value cache while generating (one for the whole stack)."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.past = DynamicCache(config=config)

    def select(self, rows: Tensor) -> None:
        self.past.batch_select_indices(rows)


class HFAPRTransformer(APRTransformer):
    """APR over a Hugging Face base. ``pretrained``: read the base's weights from
    ``cfg.base["path"]`` (training); otherwise only its architecture (a trained model's
    weights are loaded after)."""

    def __init__(self, cfg: APRConfig, pretrained: bool = False) -> None:
        self._pretrained = pretrained  # read by build_base, which APRTransformer calls
        super().__init__(cfg)

    def build_base(self) -> None:
        base = self.cfg.base
        assert base is not None, "HFAPRTransformer needs cfg.base"
        if self._pretrained:
            self.hf = read_base(base["path"])
            base["parameters"] = sum(p.numel() for p in self.hf.parameters())
        else:
            arch = dict(base["architecture"])
            config = AutoConfig.for_model(arch.pop("model_type"), **arch)
            self.hf = AutoModelForCausalLM.from_config(config)
        self.base_vocab = self.cfg.vocab_size - N_EXTRA  # the base tokenizer's size
        rows = cast(Tensor, self.hf.get_input_embeddings().weight).size(0)
        if self.base_vocab > rows:
            raise TrainingInputError(
                f"--base {base['path']}: its tokenizer has {self.base_vocab} tokens but the model "
                f"only {rows} embeddings; give the tokenizer the model was trained with"
            )
        d = self.cfg.d_model
        self.extra_wte = nn.Embedding(N_EXTRA, d)  # Veracity's tokens, read
        self.extra_head = nn.Linear(d, N_EXTRA, bias=False)  # and written

    def init_weights(self) -> None:
        """APR's parts fresh, Veracity's tokens near the base's embeddings; the base as read."""
        own = [self.est_features, self.est_out, self.refine, self.ln_r, self.extra_head]
        for module in [*own, *([self.pointer] if self.pointer is not None else [])]:
            module.apply(self._init_weights)
        for name, p in self.refine.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.zeros_(p)
        with torch.no_grad():
            wte = cast(Tensor, self.hf.get_input_embeddings().weight)
            noise = torch.randn_like(self.extra_wte.weight) * wte.std()
            self.extra_wte.weight.copy_(wte.mean(0) + noise)

    def new_caches(self) -> list[KVCache]:
        return [BaseCache(self.hf.config)]

    def vocab_head(self, x: Tensor) -> Tensor:
        # the tokenizer's ids only: many bases pad their embedding rows past it (to a multiple
        # of 64 or 128), and Veracity's ids start where the tokenizer ends
        base = self.hf.get_output_embeddings()(x)[..., : self.base_vocab]
        return torch.cat([base, self.extra_head(x).to(base.dtype)], -1)

    def embed(self, idx: Tensor) -> Tensor:
        extra = idx >= self.base_vocab
        x = self.hf.get_input_embeddings()(idx.clamp(max=self.base_vocab - 1))
        mine = self.extra_wte((idx - self.base_vocab).clamp(min=0)).to(x.dtype)
        return torch.where(extra.unsqueeze(-1), mine, x)

    def base(
        self,
        idx: Tensor,
        pos0: int = 0,
        caches: list[KVCache] | None = None,
        pcache: PointerCache | None = None,
        real: Tensor | None = None,
        keep: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor, Tensor] | None]:
        cols = torch.arange(pos0, pos0 + idx.size(1), device=idx.device)
        pos = self.positions(cols, real).expand_as(idx)
        # every column so far, the row's padding masked
        seen = None if real is None else real[:, : pos0 + idx.size(1)].long()
        past = None if caches is None else caches[0]
        bf16 = base_precision(idx.device.type) == "bf16"
        with torch.autocast(idx.device.type, dtype=torch.bfloat16, enabled=bf16):
            out = getattr(self.hf, self.hf.base_model_prefix)(
                inputs_embeds=self.embed(idx),
                attention_mask=seen,
                position_ids=pos,
                cache=past.past if isinstance(past, BaseCache) else None,
                use_cache=past is not None,
                output_hidden_states=True,
            )
            x = out.last_hidden_state
            h_probe = out.hidden_states[self.cfg.probe_layer + 1]
            logits = self.vocab_head(x if keep is None else x[keep])
            logits, pointed = self.point(x, idx, cols, logits, pcache, keep)
        return h_probe, x, logits, pointed

    def tune(self, tuning: str) -> None:
        """What trains of the base: nothing, LoRA adapters on its attention, or everything."""
        assert tuning in TUNINGS, tuning  # TrainConfig.check said so in one line
        if tuning == "full":
            return
        self.hf.requires_grad_(False)
        if tuning == "lora":
            kind = self.hf.config.model_type
            known = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(kind)
            targets = list(known) if known else "all-linear"
            lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=targets)
            inject_adapter_in_model(lora, self.hf)

    def merge_adapters(self) -> None:
        """LoRA adapters folded into the base's weights: the exported model is a plain one."""
        for name, module in list(self.hf.named_modules()):
            if isinstance(module, LoraLayer):
                module.merge()
                parent, _, child = name.rpartition(".")
                setattr(self.hf.get_submodule(parent), child, module.get_base_layer())


def from_base(cfg: APRConfig, tuning: str) -> HFAPRTransformer:
    """A model to train: the base's weights read, its tuning applied."""
    model = HFAPRTransformer(cfg, pretrained=True)
    model.tune(tuning)
    return model.train()  # from_pretrained reads a base in eval mode: its dropout as configured
