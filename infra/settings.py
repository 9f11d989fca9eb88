"""One settings object for every stage: environment (``VERACITY_*``), an optional TOML file, defaults.

Profiles:
  ``local``  (default) SQLite stores and plain files under the home directory, CPU.
  ``server`` PostgreSQL, S3, an MLflow tracking server and a Prefect server (see README).
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from infra.errors import UserError


def _toml_path() -> Path:
    return Path(os.environ.get("VERACITY_CONFIG", "veracity.toml"))


class SettingsError(UserError, ValueError):
    """The environment or the TOML file holds a setting that cannot be used."""


def with_driver(url: str) -> str:
    """A PostgreSQL URL with the driver this project installs (psycopg2): SQLAlchemy 2.1 reads
    a bare ``postgresql://`` as psycopg 3, which is not installed."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url[len(bare) :]
    return url


class S3Settings(BaseSettings):
    """Where ``s3://`` URIs go. Credentials come from the environment or the AWS profile only."""

    model_config = SettingsConfigDict(env_prefix="VERACITY_S3_", extra="ignore")

    endpoint_url: str | None = None
    region: str = "us-east-1"
    max_attempts: int = Field(
        default=8, ge=1, description="botocore retry attempts (standard mode)"
    )


class StackSettings(BaseSettings):
    """Where ``veracity stack up`` puts its services (local processes or compose)."""

    model_config = SettingsConfigDict(env_prefix="VERACITY_STACK_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="bind address of every service")
    postgres_port: int = Field(default=5432, ge=1, le=65535)
    s3_port: int = Field(default=9000, ge=1, le=65535)
    mlflow_port: int = Field(default=5000, ge=1, le=65535)
    prefect_port: int = Field(default=4200, ge=1, le=65535)
    bucket: str = "veracity"
    # An existing PostgreSQL server to use (admin connection, no password in it: use PGPASSWORD
    # or ~/.pgpass). None: use one on host:postgres_port if it answers, else initdb one.
    postgres_admin_url: str | None = None
    database_prefix: str = "veracity"


class RiskSettings(BaseSettings):
    """The abstention guarantee asked of every evaluation (``models.risk``)."""

    model_config = SettingsConfigDict(env_prefix="VERACITY_RISK_", extra="ignore")

    alpha: float = Field(
        default=0.01, gt=0.0, lt=1.0, description="hallucination rate allowed among answers"
    )
    confidence: float = Field(
        default=0.9, gt=0.0, lt=1.0, description="confidence that the rate holds (1 - delta)"
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VERACITY_", env_nested_delimiter="__", extra="ignore"
    )

    profile: Literal["local", "server"] = "local"
    home: Path = Path(".veracity")
    s3: S3Settings = Field(default_factory=S3Settings)
    stack: StackSettings = Field(default_factory=StackSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    # Server profile endpoints (a later issue fills the stack in); None means "derive from home".
    database_url: str | None = None
    mlflow_tracking_uri: str | None = None
    prefect_api_url: str | None = None
    data_root: str | None = None
    # Dask scheduler for world generation ("tcp://host:8786"; "local" starts a LocalCluster).
    dask_address: str | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments > environment > TOML file > defaults.
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_toml_path())
        return (init_settings, env_settings, toml)

    @property
    def datasets_root(self) -> str:
        return self.data_root or str(self.home / "datasets")

    @property
    def db_url(self) -> str:
        """SQLAlchemy URL of the audit/metadata database."""
        return with_driver(
            self.database_url or f"sqlite:///{(self.home / 'veracity.db').resolve()}"
        )

    @property
    def tracking_uri(self) -> str:
        return with_driver(
            self.mlflow_tracking_uri or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    named = os.environ.get("VERACITY_CONFIG")
    if named and not Path(named).is_file():  # a file asked for by name must be read, not skipped
        raise SettingsError(
            f"VERACITY_CONFIG={named}: no such file; point it at a veracity.toml or unset it"
        )
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(part) for part in first["loc"]]
        where = f"VERACITY_{'__'.join(loc).upper()} or {'.'.join(loc)} in {_toml_path()}"
        raise SettingsError(
            f"setting {'.'.join(loc)} ({where}): {first['msg']}, got {first['input']!r}"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{_toml_path()} is not valid TOML: {exc}") from None


def reload_settings() -> Settings:
    """Drop the cached settings (tests change the environment)."""
    get_settings.cache_clear()
    return get_settings()
