"""Pipeline parameters: the defaults, the cache-key version and the pydantic models every flow
checks its input with (:class:`PipelineParams`, :class:`TrainParams`) before any task runs."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from infra.settings import get_settings
from infra.storage import join
from models.config import TrainConfig
from models.precision import base_precision, training_device_type
from worldgen.domains import domain_names

# A small model that trains, evaluates and promotes in under ten minutes on 2 CPU cores. The data
# is cheap (seconds) and plentiful: with 300 records per domain the model memorised its training
# documents (train loss 0.002) and answered 0.66 of held-out questions; with 10000 it sees each
# document about once and learns the task (README has today's accuracy). Training's defaults
# are models.config.TrainConfig's.
DEFAULT_N = 10000
# Version of the cache keys: bump when a stage's meaning changes under the same inputs.
KEY_VERSION = "10"  # 2: packed QA, value slots, derivations; 3: evaluation samples per domain;
# 4: unknown rule answers mark what is unstated; labels are pointers; stages and indications derive;
# 5: facts of one kind may share a sentence ("A and B were x and y, respectively");
# 6: unknown only where the document does not decide the answer (Kleene gaps, revealed_by);
# 7: the ruling and the elements derive (elements(...), liable(...));
# 8: findings that fail every claim give the award away (elements() decides the reveal)
# 9: labels in their bands both ways (medical and legal worlds v2: other records, same seed)
# 10: surface forms in families; a held-out-phrasing twin; evaluation on both
FAILURE_COLUMNS = ("domain", "batch", "check", "expectation", "unexpected_count", "error")


def stable_hash(data: Any) -> str:
    """sha256 of the data as sorted JSON: the same for equal configs and references."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


# ------------------------------------------------------------------------------ parameters


def _from_config(name: str) -> Any:
    """A flow parameter whose default and help are TrainConfig's (the one place for both)."""
    default = TrainConfig.default(name)
    help_text = TrainConfig.field_help(name)
    if isinstance(default, dict):
        return Field(default_factory=lambda: dict(default), description=help_text)
    return Field(default=default, description=help_text)


class TrainParams(BaseModel):
    """``models.config.TrainConfig`` as flow parameters, checked before any stage runs: the
    defaults, help and checks are TrainConfig's (a test holds the fields equal)."""

    model_config = ConfigDict(extra="forbid")

    mode: str = _from_config("mode")
    size: str = _from_config("size")
    max_steps: int = _from_config("max_steps")
    batch_size: int = _from_config("batch_size")
    lr: float = _from_config("lr")
    precision: str = _from_config("precision")
    devices: int = _from_config("devices")
    num_nodes: int = _from_config("num_nodes")
    strategy: str = _from_config("strategy")
    seed: int = _from_config("seed")
    answer_only: bool = _from_config("answer_only")
    pack: bool = _from_config("pack")
    val_check_interval: int = _from_config("val_check_interval")
    checkpoint_every: int = _from_config("checkpoint_every")
    model: dict[str, Any] = _from_config("model")
    base: str | None = _from_config("base")
    base_tuning: str = _from_config("base_tuning")

    @model_validator(mode="after")
    def _checked_as_training_checks(self) -> TrainParams:
        self.to_config().check()  # also VERACITY_BASE_PRECISION: fails before any stage runs
        return self

    def to_config(self, **run: Any) -> TrainConfig:
        """The TrainConfig these parameters ask for; ``run``: where it goes (out, resume)."""
        return TrainConfig(**self.model_dump(), **run)

    def config_hash(self) -> str:
        """The training cache key: this config, and the base's precision where it is not bf16
        (a model trained in fp32 is not the one a bf16 run asks for; bf16 runs keep their keys)."""
        data = self.model_dump()
        if data["base"] is None:  # runs without a base keep the keys they had
            del data["base"], data["base_tuning"]
        base = base_precision(training_device_type())
        if base != "bf16":
            data["base_precision"] = base
        return stable_hash(data)


class PipelineParams(BaseModel):
    """Every knob of the pipeline; the flows build this first, so bad input does no work."""

    model_config = ConfigDict(extra="forbid")

    domains: list[str] = Field(default_factory=lambda: list(domain_names()), min_length=1)
    n: int = Field(default=DEFAULT_N, ge=20, le=2_000_000, description="records per domain")
    seed: int = Field(default=0, ge=0, description="dataset seed")
    out: str | None = Field(default=None, description="dataset folder or s3:// prefix")
    train: TrainParams = Field(default_factory=lambda: TrainParams())
    eval_split: Literal["test", "validation"] = "test"
    # the abstention guarantee (None: the settings' risk.alpha and risk.confidence)
    risk: float | None = Field(
        default=None, gt=0.0, lt=1.0, description="hallucination rate allowed among answers"
    )
    confidence: float | None = Field(
        default=None, gt=0.0, lt=1.0, description="confidence that the rate holds"
    )
    promote: bool = True
    shards: int = Field(default=1, ge=1, le=4096, description="generation shards (same digest)")
    dask: str | None = Field(
        default=None,
        pattern=r"^(local|(tcp|tls)://[A-Za-z0-9._-]+:[0-9]{1,5})$",
        description="run generation shards on Dask: a scheduler address, or 'local'",
    )

    @field_validator("domains")
    @classmethod
    def _known_domains(cls, value: list[str]) -> list[str]:
        unknown = [d for d in value if d not in domain_names()]
        if unknown:
            raise ValueError(
                f"unknown domain(s) {unknown}; choose from {', '.join(domain_names())}"
            )
        if len(set(value)) != len(value):
            raise ValueError(f"domains repeat: {value}")
        return value

    def dataset_out(self) -> str:
        if self.out:
            return self.out
        tag = "" if self.domains == list(domain_names()) else "-" + "-".join(self.domains)
        return join(get_settings().datasets_root, f"ds-seed{self.seed}-n{self.n}{tag}")

    def heldout_out(self) -> str:
        """Where the dataset's held-out-phrasing twin goes: beside it."""
        return f"{self.dataset_out().rstrip('/')}-heldout"


def check_params(**values: Any) -> PipelineParams:
    """``PipelineParams`` from flow/CLI arguments (``None`` means the default)."""
    train = values.pop("train", None) or {}
    clean = {k: v for k, v in values.items() if v is not None}
    return PipelineParams(**clean, train=TrainParams(**train))
