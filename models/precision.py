"""The precision the base stack runs in, per device.

APR's premise is that bf16 is the cheap precision. It is on GPUs with bf16 and on CPUs with
AVX512-BF16 or AMX, where a bf16 matmul runs ~2-3x as fast as fp32. On other CPUs (AVX2 only:
most laptops, AMD before Zen 4) torch emulates bf16 and a matmul runs ~30-130x slower than fp32
(`benchmarks/precision.py`), so there the base runs in fp32: the same model, a little more
precise, at the speed the machine has. `VERACITY_BASE_PRECISION=bf16|fp32` forces one, e.g. to
reproduce a run recorded on another kind of machine.

torch is imported inside the functions that need it: the CLI checks the setting without it
(``TrainConfig.check`` calls :func:`requested`), and ``import torch`` costs 1.8 s at start-up on
these 2 cores, measured.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

from infra.settings import SettingsError

if TYPE_CHECKING:
    import torch

ENV = "VERACITY_BASE_PRECISION"
CHOICES = ("auto", "bf16", "fp32")


def requested() -> str:
    """The precision asked for in the environment; a clear error when it is not a choice."""
    choice = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if choice not in CHOICES:
        raise SettingsError(f"{ENV} must be one of {', '.join(CHOICES)}, got {choice!r}")
    return choice


@functools.cache
def bf16_is_fast(device_type: str) -> bool:
    """Whether this kind of device has bf16 arithmetic of its own (not emulated)."""
    import torch

    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return False


def base_precision(device_type: str) -> str:
    """bf16 where it is fast (or forced), else fp32: the name, as the run records it."""
    choice = requested()
    if choice == "auto":
        return "bf16" if bf16_is_fast(device_type) else "fp32"
    return choice


def base_dtype(device_type: str) -> torch.dtype:
    import torch

    return torch.bfloat16 if base_precision(device_type) == "bf16" else torch.float32


def training_device_type() -> str:
    """The device kind Lightning's accelerator="auto" trains on."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def training_precision(asked: str, device_type: str) -> str:
    """Lightning's precision for a run asked to train in `asked`: bf16-mixed only where the base
    runs bf16 too, since emulated bf16 around it would cost as much on the few ops left."""
    if asked == "bf16-mixed" and base_precision(device_type) != "bf16":
        return "32-true"
    return asked
