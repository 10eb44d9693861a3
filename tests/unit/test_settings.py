"""Settings come from LOYALTY_* variables, follow the local stack, and fail naming the variable."""

from __future__ import annotations

import pytest

from settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP", "MONGO_URI", "KAFKA_PORT", "MONGO_PORT", "SMTP_PORT"):
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


def test_topic_namespace_defaults_empty_and_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().topic_namespace == ""
    monkeypatch.setenv("LOYALTY_TOPIC_NAMESPACE", "shop-a.")
    assert load_settings().topic_namespace == "shop-a."
    monkeypatch.setenv("LOYALTY_TOPIC_NAMESPACE", "shop a")
    with pytest.raises(SettingsError, match="LOYALTY_TOPIC_NAMESPACE"):
        load_settings()
