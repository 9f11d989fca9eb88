"""One file-based GX context per process (per home directory), no cloud, no analytics.

The context lives under ``<home>/gx``; Data Docs are static HTML under
``<home>/gx/uncommitted/data_docs/local_site``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx
from great_expectations.data_context.types.base import ProgressBarsConfig

from infra.settings import get_settings

_LOCK = threading.RLock()
_CACHE: dict[str, Any] = {}


def gx_root() -> Path:
    return Path(get_settings().home).resolve() / "gx"


def get_context() -> Any:
    """The file context for the current home; rebuilt when the home changes (tests do that)."""
    home = Path(get_settings().home).resolve()
    with _LOCK:
        if _CACHE.get("home") != str(home):
            home.mkdir(parents=True, exist_ok=True)
            context = gx.get_context(mode="file", project_root_dir=str(home))
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            _CACHE.clear()
            _CACHE.update(home=str(home), context=context)
        return _CACHE["context"]


def cached(key: str) -> Any:
    return _CACHE.get(key)


def remember(key: str, value: Any) -> None:
    _CACHE[key] = value


def docs_index() -> Path:
    return gx_root() / "uncommitted" / "data_docs" / "local_site" / "index.html"
