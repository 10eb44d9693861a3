"""Settings from ``LOYALTY_*`` environment variables, defaulting to the local stack."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from topics.names import check_namespace

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
    log_level: str = "INFO"
    log_json: bool = False

    topic_namespace: Annotated[str, AfterValidator(check_namespace)] = ""
    """Prefix of every topic name (and of the worker's consumer group): isolates programs."""
    web_host: str = "127.0.0.1"
    api_token: str | None = None

    # Downstream consumers (``loyalty consumers``): web server, email, retries, analytics.
    consumers_web_port: Port = 6067
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    smtp_connections: Annotated[int, Field(ge=1, le=64)] = 4
    mail_templates_dir: Path | None = None
    mail_list_unsubscribe: str = ""
    consumer_max_attempts: Annotated[int, Field(ge=1, le=100)] = 6
    consumer_retry_base: Annotated[float, Field(gt=0, le=60)] = 0.5
    consumer_retry_max: Annotated[float, Field(gt=0, le=3600)] = 30.0
    consumer_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 500
    tier_changes_file: Path = Path("tier-changes.jsonl")

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
