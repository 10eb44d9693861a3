"""Settings from ``LOYALTY_*`` environment variables, defaulting to the local stack."""

from __future__ import annotations

import json
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from topics.names import check_namespace

ENV_PREFIX = "LOYALTY_"

Port = Annotated[int, Field(ge=1, le=65535)]

REWARD_CODE_KEY_FILE = "reward-code.key"
"""The key the local stack generates in its stack dir (``loyalty stack up``)."""
MIN_REWARD_CODE_KEY_LENGTH = 32
SECRET_SETTINGS = frozenset(
    {
        "reward_code_key",
        "api_token",
        "smtp_password",
        "kafka_sasl_password",
        "kafka_ssl_key_password",
        "mongo_password",
    }
)
"""Settings whose values never appear in an error message, a log line or ``config show``."""
PORTS_FILE = "ports.json"
"""Where ``loyalty stack up`` records the ports it started the stack on (in the stack dir)."""
STACK_PORTS = ("kafka_port", "kafka_controller_port", "mongo_port", "smtp_port")
"""The settings recorded in the ports file: unset, they follow the running stack."""
ENV_FILE = ".env"
"""Optional ``LOYALTY_*=value`` lines in the project root; the environment wins over it."""
ANCHORED_PATHS = ("program_file", "stack_dir", "tier_changes_file")
"""Path settings whose relative defaults are anchored at the project root, not the cwd."""


def project_root() -> Path:
    """Return the directory relative defaults are anchored at, whatever the working directory.

    A source checkout (``pip install -e``, what ``make install`` does) is the directory holding
    this file and ``pyproject.toml``; an installed wheel (the Docker image) has no project root,
    so its defaults stay relative to the working directory it is started in.
    """
    here = Path(__file__).resolve().parent
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def recorded_ports(stack_dir: Path) -> dict[str, int]:
    """Return the ports ``loyalty stack up`` recorded in stack_dir; empty when there are none."""
    try:
        raw = json.loads((stack_dir / PORTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {
        name: value
        for name, value in raw.items()
        if name in STACK_PORTS and isinstance(value, int) and 1 <= value <= 65535
    }


def _seconds(value: object) -> object:
    # A plain number of seconds ("90") besides pydantic's ISO 8601 ("PT1H") and "HH:MM:SS".
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


Duration = Annotated[timedelta, BeforeValidator(_seconds)]


class SettingsError(Exception):
    """A setting read from the environment is invalid; the message names the variable."""


class Settings(BaseSettings):
    """Everything the service and the local stack read from the environment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        frozen=True,
        env_file=project_root() / ENV_FILE,
        env_file_encoding="utf-8",
    )

    # Where the service connects. When left unset they follow the local stack's ports below.
    kafka_bootstrap: str = ""
    mongo_uri: str = ""
    mongo_database: str = "loyalty"
    # Real deployments (docs/deployment.md): Kafka over SSL and/or SASL, MongoDB with TLS and
    # credentials. Defaults are the local stack's: plaintext, no authentication.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_cafile: Path | None = None
    """CA bundle that signed the brokers' certificates (default: the system's)."""
    kafka_ssl_certfile: Path | None = None
    """Client certificate, for brokers that authenticate clients by TLS (mutual TLS)."""
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr = SecretStr("")
    mongo_username: str = ""
    """Overrides a user in ``LOYALTY_MONGO_URI`` (kept out of the URI so it is never printed)."""
    mongo_password: SecretStr = SecretStr("")
    mongo_auth_source: str = ""
    mongo_tls: bool | None = None
    """Force TLS on or off; unset: what the URI says (``mongodb+srv://`` turns it on)."""
    mongo_tls_ca_file: Path | None = None
    mongo_tls_certificate_key_file: Path | None = None
    mongo_write_concern: Literal["majority", "1"] = "majority"
    """How many members acknowledge each write (``w``); the URI's ``w=`` wins when it has one."""
    mongo_journal: bool = True
    """Each write waits for the server's journal (``j``); the URI's ``journal=`` wins."""
    smtp_host: str = "127.0.0.1"
    smtp_port: Port = 2525
    mail_from: str = "loyalty@localhost"
    program_file: Path = Path("program.example.yaml")
    topic_partitions: Annotated[int, Field(ge=1, le=1000)] = 6
    topic_namespace: Annotated[str, AfterValidator(check_namespace)] = ""
    """Prefix of every topic name (and of the worker's consumer group): isolates programs."""
    max_future_skew: Duration = Field(default=timedelta(hours=1), ge=timedelta(0))
    """Messages dated further in the future are refused as ``occurred_at_in_future``
    (seconds, or ISO 8601 like ``PT1H``)."""

    # The stream worker (``loyalty worker``).
    worker_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 500
    worker_batch_within: Annotated[float, Field(gt=0, le=60)] = 0.2
    """Seconds a batch waits to fill before it is processed anyway."""
    park_timeout: Duration = Field(default=timedelta(days=7), gt=timedelta(0))
    """How long a message for an unknown customer waits before it is refused."""
    scheduler_interval: Annotated[float, Field(gt=0, le=3600)] = 30.0
    """Seconds between scheduler runs (time events, parked messages, outbox backlog)."""
    scheduler_page: Annotated[int, Field(ge=1, le=10_000)] = 500
    """Customers per page of the scheduler's due query."""
    outbox_grace: Duration = Field(default=timedelta(seconds=60), ge=timedelta(0))
    """How old an unsent output must be before the scheduler republishes it: younger ones are
    being published by the worker that wrote them (seconds, or ISO 8601 like ``PT1M``)."""
    web_host: str = "127.0.0.1"
    web_port: Port = 6066
    api_token: SecretStr | None = None
    """Bearer token ``/customers/…`` and ``/coupons/…`` require; needed beyond loopback."""

    # The store (docs/storage.md).
    store_hot_orders: Annotated[int, Field(ge=1, le=100_000)] = 20
    """Orders kept in the customer document; older ones move to the order archive."""
    store_hot_orders_slack: Annotated[int, Field(ge=0, le=100_000)] = 20
    """Orders beyond ``store_hot_orders`` the document may hold before they are archived, in
    one chunk, down to ``store_hot_orders`` (0: archive at every save)."""
    store_hot_ids_slack: Annotated[int, Field(ge=0, le=100_000)] = 256
    """Applied ids beyond the rules' ring of 512 the document may hold before they are
    archived, in one chunk (0: archive at every save)."""
    store_load_chunk: Annotated[int, Field(ge=1, le=10_000)] = 64
    """Customer ids per ``$in`` query when a batch loads its customers."""
    log_level: str = "INFO"
    log_json: bool = False
    # The secret reward codes are derived from; unset: the local stack's generated key.
    reward_code_key: SecretStr | None = Field(default=None, min_length=MIN_REWARD_CODE_KEY_LENGTH)

    # Downstream consumers (``loyalty consumers``): web server, email, retries, analytics.
    consumers_web_port: Port = 6067
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    smtp_ca_file: Path | None = None
    """CA certificates to verify the SMTP server with (a private CA); unset: the system's."""
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
    stack_start_timeout: Annotated[float, Field(gt=0, le=3600)] = 90.0
    """Seconds each local-stack service may take to answer after it is started."""

    @model_validator(mode="after")
    def _follow_stack(self) -> Settings:
        # Frozen model: fill derived defaults through object.__setattr__ once, at validation.
        root = project_root()
        for name in ANCHORED_PATHS:
            value = getattr(self, name)
            if name not in self.model_fields_set and not value.is_absolute():
                object.__setattr__(self, name, root / value)
        # Only a path that was set must exist: the default may be absent (an installed wheel).
        if "program_file" in self.model_fields_set and not self.program_file.is_file():
            raise ValueError(
                f"{ENV_PREFIX}PROGRAM_FILE: no such file: {self.program_file.absolute()}"
            )
        templates = self.mail_templates_dir
        if templates is not None and not templates.is_dir():
            raise ValueError(
                f"{ENV_PREFIX}MAIL_TEMPLATES_DIR: no such directory: {templates.absolute()}"
            )
        # Ports left unset follow what `loyalty stack up` recorded, so every client agrees with
        # the running stack; a port set explicitly always wins.
        for name, port in recorded_ports(self.stack_dir).items():
            if name not in self.model_fields_set:
                object.__setattr__(self, name, port)
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

    def web_token(self) -> str | None:
        """Return the API token the web servers require, or None when none is set."""
        token = self.api_token.get_secret_value() if self.api_token is not None else ""
        return token or None

    @property
    def reward_code_key_file(self) -> Path:
        """Return where the local stack keeps its generated reward code key."""
        return self.stack_dir / REWARD_CODE_KEY_FILE

    def code_key(self) -> str:
        """Return the reward code key: the setting, else the local stack's generated one."""
        if self.reward_code_key is not None:
            return self.reward_code_key.get_secret_value()
        # Read lazily: `loyalty stack up` may write the file after these settings were loaded.
        try:
            key = self.reward_code_key_file.read_text(encoding="utf-8").strip()
        except OSError:
            key = ""
        if len(key) < MIN_REWARD_CODE_KEY_LENGTH:
            raise SettingsError(
                f"{ENV_PREFIX}REWARD_CODE_KEY is not set and the local stack has no key in "
                f"{self.reward_code_key_file}; run `loyalty stack up` (it generates one), or "
                f"set {ENV_PREFIX}REWARD_CODE_KEY to a secret of at least "
                f"{MIN_REWARD_CODE_KEY_LENGTH} characters (for example `openssl rand -base64 32`)"
            )
        return key

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
            message = err["msg"].removeprefix("Value error, ")
            if not err["loc"]:
                lines.append(message)  # a check across settings: its message names the variable
                continue
            field = str(err["loc"][0])
            got = "hidden" if field in SECRET_SETTINGS else repr(err.get("input"))
            lines.append(f"{ENV_PREFIX}{field.upper()}: {message} (got {got})")
        raise SettingsError("invalid settings: " + "; ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return load_settings()
