"""A trained model's folder: weights as safetensors plus plain JSON, written and read here.

``model.safetensors``, ``config.json``, ``tokenizer.json``, ``routing.json`` (the calibrated
inference threshold), ``lineage.json`` (dataset and training config) and ``guide.json`` (the
questions it was trained to answer, ``models.guide``). Loading never
unpickles anything. Training writes it; answering, evaluation and serving read it.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import Tensor

from models.apr import APRConfig, APRTransformer
from models.base_tokenizer import load_tokenizer
from models.config import TrainConfig
from models.guide import Guide
from models.tokenizer import Tokenizer


def export(
    model: APRTransformer,
    tok: Tokenizer,
    model_dir: Path,
    threshold: float,
    uri: str,
    digest: str,
    config: TrainConfig,
    guide: Guide | None = None,
) -> Path:
    model_dir.mkdir(parents=True, exist_ok=True)
    if guide is not None:
        guide.save(model_dir)
    model.merge_adapters()
    save_file(_unshared(model.state_dict()), str(model_dir / "model.safetensors"))
    (model_dir / "config.json").write_text(json.dumps(model.cfg.to_dict(), indent=2))
    (model_dir / "tokenizer.json").write_text(tok.to_json())
    (model_dir / "routing.json").write_text(
        json.dumps(
            {"route_threshold": threshold, "route_fraction": model.cfg.route_fraction}, indent=2
        )
    )
    (model_dir / "lineage.json").write_text(
        json.dumps(
            {"dataset_uri": uri, "dataset_digest": digest, "train_config": asdict(config)}, indent=2
        )
    )
    return model_dir


def _unshared(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The state with a copy of any tensor whose memory an earlier one holds (a base's tied
    embeddings and head): safetensors refuses shared tensors; the rest are saved as they are."""
    seen: set[int] = set()
    out = {}
    for name, value in state.items():
        ptr = value.untyped_storage().data_ptr()
        out[name] = (value.detach().clone() if ptr in seen else value.detach()).contiguous()
        seen.add(ptr)
    return out


def build(cfg: APRConfig, tuning: str | None = None) -> APRTransformer:
    """The model a config describes: the built-in stack, or APR over a Hugging Face base
    (with ``tuning``, for training: the base's weights read and its tuning applied)."""
    if cfg.base is None:
        return APRTransformer(cfg)
    from models import hf  # the [hf] extra (transformers, peft): only a base's model needs it

    return hf.HFAPRTransformer(cfg) if tuning is None else hf.from_base(cfg, tuning)


def load_model(model_dir: str | Path) -> tuple[APRTransformer, Tokenizer]:
    """Weights from safetensors and JSON only; nothing is unpickled."""
    path = Path(model_dir)
    model = build(APRConfig(**json.loads((path / "config.json").read_text())))
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    return model.eval(), load_tokenizer((path / "tokenizer.json").read_text())
