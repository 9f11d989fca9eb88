"""The configs: the model's (:class:`APRConfig`, with named sizes) and a training run's
(:class:`TrainConfig`, its defaults and help, and named presets).

This is the one place for training defaults (litgpt's manner: a config dataclass and named
presets). ``veracity train`` and ``veracity run`` build their options and help from it, the
flows' ``TrainParams`` are generated from its fields, and the benchmarks start from a preset.
Plain data, no torch, so the command line reads it without loading the model.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from infra.errors import UserError
from models.modes import MODE_NAMES, MODES, get_mode
from models.precision import requested as requested_precision
from models.sizes import MODEL_SIZES

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
STRATEGIES = ("auto", "ddp")
TUNINGS = ("frozen", "lora", "full")  # what of a Hugging Face base trains (models.hf)


@dataclass
class APRConfig:
    """The model's shape and routing. Every trained model takes its shape from a named size
    (:meth:`from_name`, ``models.sizes``); the shape defaults below are only what a bare
    ``APRConfig()`` builds (``benchmarks/apr.py``'s timing stack, recorded in its results)."""

    vocab_size: int = 2048
    n_layer: int = 6
    n_head: int = 6
    d_model: int = 384
    n_refine: int = 1  # refinement layers (fp32, routed tokens only)
    refine_kv_heads: int = 1  # key/value heads of a refinement layer (1: shared, multi-query)
    probe_layer: int = 3  # estimator reads the residual stream after block `probe_layer` (0-based)
    max_seq_len: int = 256
    dropout: float = 0.0
    route_fraction: float = 0.125  # target fraction of routed tokens
    warmup_steps: int = 200  # capacity warm-up: routed fraction goes 1.0 -> route_fraction
    # training threshold: quantile of the CURRENT estimator's scores on the probe states of the
    # last `threshold_window` batches (rescored every step, so estimator drift cannot lag it)
    threshold_window: int = 1
    threshold_feedback: float = 0.5  # gain of the correction by the fraction really routed
    ema_decay: float = 0.5  # unused since the rescored window; kept so older configs load
    lambda_est: float = 0.5  # weight of the estimator's BCE in the loss
    lambda_base: float = 1.0  # weight of the base logits' cross-entropy beside the final one
    estimator_hidden: int = 64  # 0 = linear probe, otherwise a 1-hidden-layer MLP
    mode: str = "apr"
    n_slots: int = 0  # slot tokens (0: no pointer head; older configs load unchanged)
    # > 0: each embedding also mixes in the previous window - 1 tokens' (a causal conv)
    local_window: int = 0
    slot_offset: int = 0  # id of the first slot token
    # True: each slot's pointer key (if a pointer) also reads the words of its clause before it
    # (``models.pointer.ClauseRead``); the tokenizer's break ids go in ``clause_breaks``
    clause_read: bool = False
    clause_breaks: list[int] = field(default_factory=list)
    # True (with clause_read): every position's input embedding also adds its clause read, so the
    # attention layers and the estimator read a label joined to a value by unseen words too
    clause_mix: bool = False
    # a Hugging Face base under APR (``models.hf``): its path, architecture and tuning
    base: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        get_mode(self.mode)
        if self.d_model % self.n_head:
            raise ValueError("d_model must be divisible by n_head")
        if not 0 <= self.probe_layer < self.n_layer:
            raise ValueError(f"probe_layer must be in [0, {self.n_layer}), got {self.probe_layer}")
        if self.refine_kv_heads < 1 or self.n_head % self.refine_kv_heads:
            raise ValueError("refine_kv_heads must be >= 1 and divide n_head")
        if not 0.0 < self.route_fraction <= 1.0:
            raise ValueError("route_fraction must be in (0, 1]")
        if self.clause_read and self.n_slots and not self.clause_breaks:  # no pointer: unused
            raise ValueError("clause_read needs clause_breaks (the ids that end a clause)")

    @classmethod
    def from_name(cls, name: str, **fields: Any) -> APRConfig:
        """A named size of ``models.sizes`` (tiny, cpu, gpu), with ``fields`` over it."""
        if name not in MODEL_SIZES:
            raise ValueError(f"size must be one of {', '.join(MODEL_SIZES)}, got {name!r}")
        return cls(**{**MODEL_SIZES[name], **fields})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TrainingInputError(UserError, ValueError):
    """The data or the config cannot be trained on as asked (missing split, bad option)."""


def _opt(default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    """The defaults are the main job's (``veracity run``) on a 2-core CPU: under 10 minutes."""

    mode: str = _opt("apr", f"which tokens the fp32 refinement sees: {', '.join(MODE_NAMES)}")
    size: str = _opt("cpu", f"model size: {', '.join(MODEL_SIZES)}")
    max_steps: int = _opt(2600, "optimizer steps")
    batch_size: int = _opt(16, "examples per device per step")
    lr: float = _opt(3e-3, "peak learning rate (AdamW, warm-up then cosine)")
    precision: str = _opt("bf16-mixed", f"Lightning precision: {', '.join(PRECISIONS)}")
    devices: int = _opt(1, "devices: CPU processes or GPUs (>1 trains with DDP)")
    num_nodes: int = _opt(1, "nodes; launch one process per node with torchrun")
    strategy: str = _opt("auto", f"Lightning strategy: {', '.join(STRATEGIES)}")
    seed: int = _opt(0, "training seed")
    answer_only: bool = _opt(True, "the loss reads answer tokens only")
    pack: bool = _opt(True, "all questions of a document in one training sequence")
    val_check_interval: int = _opt(500, "steps between validation passes")
    checkpoint_every: int = _opt(25, "steps between checkpoints (resume after a crash)")
    resume: bool = _opt(False, "continue from the run's last checkpoint")
    out: str | None = _opt(None, "run directory (default: one per dataset and config)")
    model: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "APRConfig fields over the size's"}
    )
    base: str | None = _opt(
        None, "a local Hugging Face causal LM folder to fit APR on (nothing is downloaded)"
    )
    base_tuning: str = _opt("lora", f"what of --base trains: {', '.join(TUNINGS)}")

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> TrainConfig:
        if name not in PRESETS:
            raise TrainingInputError(f"preset must be one of {', '.join(PRESETS)}, got {name!r}")
        return replace(PRESETS[name], **overrides)

    @classmethod
    def default(cls, name: str) -> Any:
        f = cls.__dataclass_fields__[name]
        return f.default_factory() if f.default is MISSING else f.default  # type: ignore[operator]

    @classmethod
    def field_help(cls, name: str) -> str:
        """A field's help text alone (a flow parameter's description)."""
        return str(cls.__dataclass_fields__[name].metadata["help"])

    @classmethod
    def help(cls, name: str) -> str:
        """An option's help with its default, as the command line shows it."""
        return f"{cls.field_help(name)} (default {cls.default(name)})"

    def model_fields(self) -> dict[str, Any]:
        """The APRConfig fields this run trains: the size's, then this run's overrides."""
        return {**MODEL_SIZES[self.size], **self.model}

    def check(self) -> None:
        choices = {
            "mode": tuple(MODES),  # read now: a mode registered later counts
            "size": tuple(MODEL_SIZES),
            "precision": PRECISIONS,
            "strategy": STRATEGIES,
            "base_tuning": TUNINGS,
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                flag = "--" + name.replace("_", "-")
                raise TrainingInputError(
                    f"{flag} must be one of {', '.join(allowed)}, got {value!r}"
                )
        counts = ("devices", "num_nodes", "max_steps", "batch_size")
        for name in (*counts, "val_check_interval", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise TrainingInputError(f"--{name.replace('_', '-')} must be >= 1")
        if not 0 < self.lr < 1:
            raise TrainingInputError(f"--lr must be in (0, 1), got {self.lr}")
        if self.base is not None and not (Path(self.base) / "config.json").is_file():
            raise TrainingInputError(
                f"--base {self.base}: not a model folder (no config.json); give a folder "
                "written by save_pretrained, with its weights and tokenizer"
            )
        requested_precision()  # VERACITY_BASE_PRECISION is a choice, or one line now


def run_fields() -> tuple[str, ...]:
    """Fields that say where and how a run goes, not what it trains (no flow parameter)."""
    return ("resume", "out")


PRESETS: dict[str, TrainConfig] = {
    # the main job on 2 CPU cores
    "cpu": TrainConfig(),
    # smoke runs and tests: seconds on a CPU, learns little
    "smoke": TrainConfig(size="tiny", max_steps=20, val_check_interval=20, checkpoint_every=5),
    # one GPU: the wider stack, longer
    "gpu": TrainConfig(size="gpu", max_steps=7000, batch_size=32),
}

FIELDS = tuple(f.name for f in fields(TrainConfig))
