"""Named model sizes: one place for the shapes that runs, the main job and tests train.

A run's ``model`` dict overrides single fields of its size. Plain data (no torch), so the
``veracity`` command and the flows can read it without importing the model.
"""

from __future__ import annotations

from typing import Any

MODEL_SIZES: dict[str, dict[str, Any]] = {
    # smoke tests and smoke runs: seconds on a CPU, learns little
    "tiny": {
        "n_layer": 2,
        "n_head": 2,
        "d_model": 64,
        "probe_layer": 0,
        "max_seq_len": 384,
        "warmup_steps": 5,
        "local_window": 4,
        "clause_read": True,
        "clause_mix": True,
    },
    # the CPU default (the main job and the quality benchmark): minutes on 2 cores
    "cpu": {
        "n_layer": 2,
        "n_head": 4,
        "d_model": 96,
        "probe_layer": 0,
        "max_seq_len": 384,  # the longest packed default-dataset example is ~340 tokens
        "warmup_steps": 20,
        "local_window": 8,
        "clause_read": True,
        "clause_mix": True,
    },
    # a GPU-sized stack
    "gpu": {
        "n_layer": 4,
        "n_head": 4,
        "d_model": 256,
        "probe_layer": 1,
        "max_seq_len": 384,
        "warmup_steps": 100,
        "local_window": 8,
        "clause_read": True,
        "clause_mix": True,
    },
}
TINY_MODEL = MODEL_SIZES["tiny"]  # what the tests train (which size is the default: TrainConfig)
