"""Settings come from LOYALTY_* variables, follow the local stack, and fail naming the variable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from settings import Settings, SettingsError, load_settings
from stack.keys import ensure_reward_code_key


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "KAFKA_BOOTSTRAP",
        "MONGO_URI",
        "KAFKA_PORT",
        "MONGO_PORT",
        "SMTP_PORT",
        "REWARD_CODE_KEY",
        "MAX_FUTURE_SKEW",
    ):
        monkeypatch.delenv(f"LOYALTY_{name}", raising=False)


def test_defaults_point_at_the_local_stack() -> None:
    settings = load_settings()
    assert settings.kafka_bootstrap == f"127.0.0.1:{settings.kafka_port}"
    assert settings.mongo_uri.startswith(f"mongodb://127.0.0.1:{settings.mongo_port}/")
    assert "retryWrites=false" in settings.mongo_uri


def test_stack_ports_move_the_client_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALTY_KAFKA_PORT", "29092")
    monkeypatch.setenv("LOYALTY_MONGO_PORT", "29017")
    settings = load_settings()
    assert settings.kafka_bootstrap == "127.0.0.1:29092"
    assert settings.mongo_uri.startswith("mongodb://127.0.0.1:29017/")


def test_explicit_addresses_win_over_stack_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALTY_KAFKA_BOOTSTRAP", "kafka:9092")
    monkeypatch.setenv("LOYALTY_MONGO_URI", "mongodb://mongo:27017/?replicaSet=rs0")
    settings = load_settings()
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.mongo_uri == "mongodb://mongo:27017/?replicaSet=rs0"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("LOYALTY_SMTP_PORT", "not-a-port"), ("LOYALTY_KAFKA_PORT", "70000")],
)
def test_invalid_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable) as excinfo:
        load_settings()
    assert value in str(excinfo.value)


@pytest.mark.parametrize(
    ("value", "skew"), [("PT2H", timedelta(hours=2)), ("90", timedelta(0, 90))]
)
def test_max_future_skew_takes_seconds_or_iso_durations(
    monkeypatch: pytest.MonkeyPatch, value: str, skew: timedelta
) -> None:
    monkeypatch.setenv("LOYALTY_MAX_FUTURE_SKEW", value)
    assert load_settings().max_future_skew == skew
    monkeypatch.delenv("LOYALTY_MAX_FUTURE_SKEW")
    assert load_settings().max_future_skew == timedelta(hours=1)


def test_a_negative_skew_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALTY_MAX_FUTURE_SKEW", "-60")
    with pytest.raises(SettingsError, match="LOYALTY_MAX_FUTURE_SKEW"):
        load_settings()


def test_a_short_reward_code_key_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOYALTY_REWARD_CODE_KEY", "hunter2")
    with pytest.raises(SettingsError, match="LOYALTY_REWARD_CODE_KEY") as excinfo:
        load_settings()
    assert "hunter2" not in str(excinfo.value)


def test_the_reward_code_key_setting_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOYALTY_STACK_DIR", str(tmp_path))
    monkeypatch.setenv("LOYALTY_REWARD_CODE_KEY", "k" * 40)
    ensure_reward_code_key(load_settings())
    assert load_settings().code_key() == "k" * 40
    assert "k" * 40 not in repr(load_settings())


def test_without_the_setting_the_local_stack_key_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOYALTY_STACK_DIR", str(tmp_path / "stack"))
    settings = load_settings()
    with pytest.raises(SettingsError, match="loyalty stack up"):
        settings.code_key()
    path = ensure_reward_code_key(settings)  # what `loyalty stack up` does
    key = settings.code_key()  # read when asked: settings loaded before the key still find it
    assert len(key) >= 32
    assert path.stat().st_mode & 0o777 == 0o600
    ensure_reward_code_key(settings)
    assert settings.code_key() == key  # never rotated: existing grants keep their codes


def test_topic_namespace_defaults_empty_and_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().topic_namespace == ""
    monkeypatch.setenv("LOYALTY_TOPIC_NAMESPACE", "shop-a.")
    assert load_settings().topic_namespace == "shop-a."
    monkeypatch.setenv("LOYALTY_TOPIC_NAMESPACE", "shop a")
    with pytest.raises(SettingsError, match="LOYALTY_TOPIC_NAMESPACE"):
        load_settings()


def test_park_timeout_is_an_iso_duration_defaulting_to_a_week(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LOYALTY_PARK_TIMEOUT", raising=False)
    assert load_settings().park_timeout == timedelta(days=7)
    monkeypatch.setenv("LOYALTY_PARK_TIMEOUT", "PT36H")
    assert load_settings().park_timeout == timedelta(hours=36)
    monkeypatch.setenv("LOYALTY_PARK_TIMEOUT", "-P1D")
    with pytest.raises(SettingsError, match="LOYALTY_PARK_TIMEOUT"):
        load_settings()


# Every setting either has a value it refuses (and the error names its variable) or is free text.
BAD_VALUES = {
    "smtp_port": "0",
    "program_file": "/nowhere/program.yaml",
    "topic_partitions": "0",
    "topic_namespace": "shop a",
    "max_future_skew": "soon",
    "worker_batch_size": "0",
    "worker_batch_within": "-1",
    "park_timeout": "0",
    "scheduler_interval": "0",
    "scheduler_page": "0",
    "outbox_grace": "-1",
    "web_port": "65536",
    "store_hot_orders": "0",
    "store_load_chunk": "0",
    "store_hot_orders_slack": "-1",
    "store_hot_ids_slack": "-1",
    "log_json": "maybe",
    "reward_code_key": "short",
    "consumers_web_port": "port",
    "smtp_security": "ssl3",
    "smtp_timeout": "0",
    "smtp_connections": "0",
    "mail_templates_dir": "/nowhere/templates",
    "consumer_max_attempts": "0",
    "consumer_retry_base": "0",
    "consumer_retry_max": "0",
    "consumer_batch_size": "0",
    "kafka_port": "70000",
    "kafka_controller_port": "-1",
    "mongo_port": "x",
    "stack_start_timeout": "0",
    "kafka_security_protocol": "TLS",
    "kafka_sasl_mechanism": "GSSAPI",
    "mongo_tls": "maybe",
    "mongo_write_concern": "2",
    "mongo_journal": "sometimes",
}
FREE_TEXT = {
    "kafka_bootstrap", "mongo_uri", "mongo_database", "smtp_host", "mail_from", "web_host",
    "api_token", "log_level", "smtp_username", "smtp_password", "smtp_ca_file",
    "mail_list_unsubscribe", "tier_changes_file", "stack_dir", "kafka_version", "kafka_heap",
    "mail_dir", "kafka_sasl_username", "kafka_sasl_password", "kafka_ssl_cafile",
    "kafka_ssl_certfile", "kafka_ssl_keyfile", "kafka_ssl_key_password", "mongo_username",
    "mongo_password", "mongo_auth_source", "mongo_tls_ca_file", "mongo_tls_certificate_key_file",
}  # fmt: skip


def test_every_setting_is_classified() -> None:
    assert set(BAD_VALUES) | FREE_TEXT == set(Settings.model_fields)
    assert not set(BAD_VALUES) & FREE_TEXT


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_a_bad_value_names_its_variable(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    variable = f"LOYALTY_{name.upper()}"
    monkeypatch.setenv(variable, BAD_VALUES[name])
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert f"{variable}: " in str(caught.value)
