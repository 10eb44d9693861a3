"""docker-compose.yml cannot run here; keep its LOYALTY_* variables real and valid."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from settings import ENV_PREFIX, Settings, load_settings

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def _loyalty_environments() -> dict[str, dict[str, str]]:
    compose: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return {
        name: {str(k): str(v) for k, v in service["environment"].items()}
        for name, service in compose["services"].items()
        if any(str(k).startswith(ENV_PREFIX) for k in service.get("environment", {}))
    }


def test_compose_runs_the_loyalty_image_with_settings() -> None:
    assert _loyalty_environments(), "no service in docker-compose.yml sets LOYALTY_* variables"


@pytest.mark.parametrize("service", sorted(_loyalty_environments()))
def test_compose_variables_are_settings_and_validate(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _loyalty_environments()[service]
    fields = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    unknown = sorted(set(env) - fields)
    assert not unknown, f"{service}: not settings: {unknown}"
    for name, value in env.items():
        # The image's /app is this checkout: paths inside it must exist here too.
        monkeypatch.setenv(name, value.replace("/app/", f"{COMPOSE.parent}/"))
    settings = load_settings()
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.mongo_uri.startswith("mongodb://mongo:27017/")
    assert settings.smtp_host == "mailpit"


def test_compose_has_the_worker_service_with_a_health_check() -> None:
    compose: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    worker = compose["services"]["worker"]
    assert worker["command"] == ["worker"]
    assert "/health" in " ".join(worker["healthcheck"]["test"])
    assert {name: dep["condition"] for name, dep in worker["depends_on"].items()} == {
        "kafka": "service_healthy",
        "mongo": "service_healthy",
    }


def test_the_image_copies_every_package_and_module() -> None:
    pyproject = tomllib.loads((COMPOSE.parent / "pyproject.toml").read_text())
    setup = pyproject["tool"]["setuptools"]
    wanted = {p.split(".")[0] for p in setup["packages"]} | {f"{m}.py" for m in setup["py-modules"]}
    copied: set[str] = set()
    for line in (COMPOSE.parent / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            copied.update(part.rstrip("/") for part in line.split()[1:-1])
    assert wanted <= copied, f"the Dockerfile does not copy {sorted(wanted - copied)}"
