"""The model modes: which tokens go through the fp32 refinement. One registry.

``models.apr`` asks the mode of its config which tokens to route, whether it has refinement
layers at all and whether its routing threshold is learned while training; adding a mode is
one entry here and its routing function. torch is imported inside the routing functions: the
command line reads the names from here, and ``import torch`` costs 1.5-1.8 s at its start-up
(measured on these 2 cores).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from torch import Tensor


class Router(Protocol):
    """What a routing function may read of the model: its own score, id and position only."""

    training: bool

    def route_target(self) -> float: ...

    def threshold(self) -> Tensor: ...

    def routing_seed(self) -> int: ...


# (model, estimator scores (B, T), token ids (B, T), each token's position in its own row (B, T))
Route = Callable[[Router, "Tensor", "Tensor", "Tensor"], "Tensor"]


@dataclass(frozen=True)
class Mode:
    name: str
    help: str
    route: Route
    refines: bool = True  # has fp32 refinement layers (dense is the base alone)
    learns_threshold: bool = False  # the threshold follows the estimator while training


def _none(model: Router, scores: Tensor, idx: Tensor, pos: Tensor) -> Tensor:
    import torch

    return torch.zeros_like(idx, dtype=torch.bool)


def _every(model: Router, scores: Tensor, idx: Tensor, pos: Tensor) -> Tensor:
    import torch

    return torch.ones_like(idx, dtype=torch.bool)


def hash_uniform(idx: Tensor, pos: Tensor, seed: int) -> Tensor:
    """Deterministic uniform [0, 1) per (token, position): causal, same with or without cache."""
    h = (idx.long() * 1_103_515_245 + pos * 12_345_679 + seed * 2_654_435) & 0x7FFFFFFF
    h = ((h ^ (h >> 15)) * 2_146_121_005) & 0x7FFFFFFF
    h = ((h ^ (h >> 13)) * 1_597_334_677) & 0x7FFFFFFF
    return (h ^ (h >> 16)).float() / 2**31


def _random(model: Router, scores: Tensor, idx: Tensor, pos: Tensor) -> Tensor:
    return hash_uniform(idx, pos, model.routing_seed()) < model.route_target()


def _estimator(model: Router, scores: Tensor, idx: Tensor, pos: Tensor) -> Tensor:
    return scores >= model.threshold()


MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode("dense", "no token refined: the base stack alone", _none, refines=False),
        Mode(
            "apr", "tokens the estimator scores as likely wrong", _estimator, learns_threshold=True
        ),
        Mode("all", "every token refined (the all-deep baseline)", _every),
        Mode("random", "a random fraction of tokens, as many as apr routes", _random),
    )
}
MODE_NAMES = tuple(MODES)


def get_mode(name: str) -> Mode:
    if name not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODE_NAMES)}, got {name!r}")
    return MODES[name]
