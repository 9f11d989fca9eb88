"""The MLflow client the registry modules share, the registered model's name, and version lookup.

The promotion gate (``registry.promotion``), the evaluation store (``registry.evaluations``) and
the read-only views (``registry.views``) all talk to the same MLflow tracking store, which is
also the model registry, about the same model. The cached client, ``MODEL_NAME`` and the one
lookup they share (a version, or ``PromotionError`` when it does not exist) live here so that
none of those modules has to import another to reach them.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from infra.procs import http_ok
from infra.settings import get_settings
from registry.gate import PromotionError

MODEL_NAME = "veracity-apr"
CHAMPION, PREVIOUS, CHALLENGER = "champion", "previous-champion", "challenger"


def client() -> MlflowClient:
    """A client on the settings' tracking store (which is also the model registry)."""
    return _client_for(get_settings().tracking_uri)


@functools.lru_cache(maxsize=8)
def _client_for(uri: str) -> MlflowClient:
    check_reachable(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def check_reachable(uri: str, tries: int = 3) -> None:
    """Fail in seconds where a tracking server does not answer: MLflow's own retries of a
    refused connection take minutes before they give up."""
    if not uri.startswith(("http://", "https://")):
        return
    for attempt in range(tries):
        if http_ok(f"{uri.rstrip('/')}/health", timeout=5):
            return
        if attempt + 1 < tries:
            time.sleep(1)
    raise MlflowException(
        f"the MLflow tracking server {uri} does not answer; start it (`veracity stack up`) "
        "or point VERACITY_MLFLOW_TRACKING_URI at one that runs"
    )


def model_version(c: MlflowClient, name: str, version: int | str) -> Any:
    try:
        return c.get_model_version(name, str(int(version)))
    except (MlflowException, ValueError):
        raise PromotionError(f"unknown version {version!r} of model {name!r}") from None
