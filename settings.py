"""Settings from ``LOYALTY_*`` environment variables, defaulting to the local stack."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "LOYALTY_"

Port = Annotated[int, Field(ge=1, le=65535)]


class SettingsError(Exception):
    """A setting read from the environment is invalid; the message names the variable."""


class Settings(BaseSettings):
    """Everything the service and the local stack read from the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # Where the service connects. When left unset they follow the local stack's ports below.
    kafka_bootstrap: str = ""
    mongo_uri: str = ""
    mongo_database: str = "loyalty"
    smtp_host: str = "127.0.0.1"
    smtp_port: Port = 2525
    mail_from: str = "loyalty@localhost"
    program_file: Path = Path("program.example.yaml")
    topic_partitions: Annotated[int, Field(ge=1, le=1000)] = 6
    # The store (docs/storage.md). Park timeout: an ISO 8601 duration ("P7D", "PT12H").
    park_timeout: Annotated[timedelta, Field(gt=timedelta(0))] = timedelta(days=7)
    store_hot_orders: Annotated[int, Field(ge=1, le=100_000)] = 100
    store_load_chunk: Annotated[int, Field(ge=1, le=10_000)] = 64
    log_level: str = "INFO"
    log_json: bool = False

    # The local stack (``loyalty stack up``).
    stack_dir: Path = Path(".stack")
    kafka_port: Port = 19092
    kafka_controller_port: Port = 19093
    kafka_version: str = "4.4.0"
    kafka_heap: str = "512m"
    mongo_port: Port = 27018
    mail_dir: Path | None = None

    @model_validator(mode="after")
    def _follow_stack(self) -> Settings:
        # Frozen model: fill derived defaults through object.__setattr__ once, at validation.
        if not self.kafka_bootstrap:
            object.__setattr__(self, "kafka_bootstrap", f"127.0.0.1:{self.kafka_port}")
        if not self.mongo_uri:
            # retryWrites=false: the local MongoDB-compatible server slows down badly with
            # retryable writes (docs/adr/0001-local-stack.md); real MongoDB may keep the default.
            uri = f"mongodb://127.0.0.1:{self.mongo_port}/?retryWrites=false&directConnection=true"
            object.__setattr__(self, "mongo_uri", uri)
        if self.mail_dir is None:
            object.__setattr__(self, "mail_dir", self.stack_dir / "mail")
        return self

    @property
    def mail_path(self) -> Path:
        """Return the folder where the local SMTP sink writes received messages."""
        return self.mail_dir if self.mail_dir is not None else self.stack_dir / "mail"


def load_settings() -> Settings:
    """Read the settings, turning validation errors into one line per bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            lines.append(f"{ENV_PREFIX}{field.upper()}: {err['msg']} (got {err.get('input')!r})")
        raise SettingsError("invalid settings: " + "; ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return load_settings()
