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


# -- what would otherwise rot: pinned images, data volumes, health, commands, the image ---------

ROOT = COMPOSE.parent


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _named_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Return {container path: named volume} of a service's volumes."""
    declared = set(_compose().get("volumes") or {})
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source in declared:
            mounts[target] = source
    return mounts


@pytest.mark.parametrize("name", sorted(n for n, s in _services().items() if "image" in s))
def test_images_are_pinned_to_a_release(name: str) -> None:
    image = _services()[name]["image"]
    repository, _, tag = image.partition(":")
    assert tag, f"{name}: {image} has no tag"
    assert tag != "latest"
    # A release (4.4.0, v1.22.3), not a moving major tag like `8`.
    assert tag.lstrip("v").count(".") >= 2, f"{name}: pin a full release, not {tag}"
    assert repository


def test_kafka_is_the_local_stack_release_in_kraft_with_a_fixed_cluster_id() -> None:
    kafka = _services()["kafka"]
    tag = kafka["image"].partition(":")[2]
    local = Settings.model_fields["kafka_version"].default
    assert tag.split(".")[0] == local.split(".")[0], "same Kafka major version as the local stack"
    env = kafka["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"]
    assert len(str(env["CLUSTER_ID"])) == 22  # 16 bytes, URL-safe base64 without padding
    assert env["KAFKA_LOG_DIRS"] in _named_mounts(kafka), "the KRaft log dir is on a volume"


def test_every_data_directory_is_on_a_named_volume() -> None:
    services = _services()
    assert "/data/db" in _named_mounts(services["mongo"])
    consumers = services["consumers"]
    tier_changes = Path(consumers["environment"]["LOYALTY_TIER_CHANGES_FILE"])
    assert str(tier_changes.parent) in _named_mounts(consumers)


def test_mongo_is_a_replica_set_healthy_only_once_primary() -> None:
    mongo = _services()["mongo"]
    assert "--replSet" in mongo["command"]
    check = " ".join(mongo["healthcheck"]["test"])
    assert "rs.initiate" in check
    assert "isWritablePrimary" in check
    assert "quit(" in check  # mongosh exits 0 on any value: the exit code must be explicit
    uri = _loyalty_environments()["worker"]["LOYALTY_MONGO_URI"]
    assert "replicaSet=" in uri


@pytest.mark.parametrize(
    ("name", "port_setting"), [("worker", "web_port"), ("consumers", "consumers_web_port")]
)
def test_services_are_built_here_healthy_on_health_and_wait_for_their_dependencies(
    name: str, port_setting: str
) -> None:
    service = _services()[name]
    assert service["build"] == "."
    port = Settings.model_fields[port_setting].default
    check = " ".join(service["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/health" in check
    depends = service["depends_on"]
    assert {"kafka", "mongo"} <= set(depends)
    assert all(dep["condition"] == "service_healthy" for dep in depends.values())


def test_every_service_that_runs_has_a_healthcheck() -> None:
    for name, service in _services().items():
        if "profiles" not in service:  # one-off runs (the demo) need none
            assert "healthcheck" in service, f"{name} has no healthcheck"
        for dependency in service.get("depends_on", {}):
            assert "healthcheck" in _services()[dependency], f"{name} waits on {dependency}"


def test_service_commands_are_commands_of_the_cli() -> None:
    from cli.examples import commands  # noqa: PLC0415 - the CLI is heavy; only this test needs it
    from cli.main import app  # noqa: PLC0415

    paths = {path for path, _ in commands(app)}
    for name, service in _services().items():
        if service.get("build") != ".":
            continue
        words = [w for w in service["command"] if not w.startswith("-")]
        assert any(" ".join(words[:n]) in paths for n in (1, 2)), f"{name}: {service['command']}"


def _dockerfile() -> list[str]:
    return [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.strip()]


def test_the_image_runs_as_a_user_of_its_own_and_carries_the_license() -> None:
    lines = _dockerfile()
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users, "the image must drop root"
    assert users[-1] not in {"root", "0"}
    copied = {part for ln in lines if ln.startswith("COPY ") for part in ln.split()[1:-1]}
    assert "LICENSE" in copied
    assert lines[-1].startswith("ENTRYPOINT")
    assert "loyalty" in lines[-1]


def test_dependencies_are_a_layer_before_the_source() -> None:
    lines = _dockerfile()
    deps = next(i for i, ln in enumerate(lines) if "-r /tmp/requirements.txt" in ln)
    first_source = next(i for i, ln in enumerate(lines) if ln.startswith("COPY models"))
    copies_before = [ln for ln in lines[:deps] if ln.startswith("COPY ")]
    assert deps < first_source
    assert copies_before == ["COPY pyproject.toml ./"]


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = {
        ln.strip().rstrip("/")
        for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    }
    assert {".git", ".venv", ".stack", "**/__pycache__", ".mypy_cache", ".pytest_cache"} <= ignored
    assert {"LICENSE", "README.md", "pyproject.toml"}.isdisjoint(ignored)
