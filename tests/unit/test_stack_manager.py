"""The stack's bookkeeping: recorded ports, port checks before start, no half-started stack."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import settings as settings_module
from settings import PORTS_FILE, Settings, load_settings, project_root
from stack import manager
from stack.process import ServiceStatus, StackError


@dataclass
class FakeService:
    """A service that records what the manager asked of it."""

    name: str
    ports: dict[str, int]
    alive: bool = False
    fail_on_start: bool = False
    calls: list[str] = field(default_factory=list)

    def running(self) -> bool:
        return self.alive

    def install(self) -> None:
        self.calls.append("install")

    def start(self) -> None:
        self.calls.append("start")
        if self.fail_on_start:
            raise StackError(f"{self.name} did not answer")
        self.alive = True

    def stop(self) -> bool:
        self.calls.append("stop")
        was, self.alive = self.alive, False
        return was

    def status(self) -> ServiceStatus:
        port = next(iter(self.ports.values()))
        return ServiceStatus(self.name, port, Path(), 1 if self.alive else None, self.alive)


@pytest.fixture
def free_ports() -> list[int]:
    """Three ports nothing listens on (bound and released)."""
    sockets = [socket.socket() for _ in range(3)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.fixture(autouse=True)
def _no_port_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "MONGO_PORT", "SMTP_PORT", "STACK_DIR"):
        monkeypatch.delenv(f"LOYALTY_{name}", raising=False)


def fakes(ports: list[int]) -> list[FakeService]:
    return [
        FakeService("mongo", {"mongo_port": ports[0]}),
        FakeService("smtp", {"smtp_port": ports[1]}),
        FakeService("kafka", {"kafka_port": ports[2]}),
    ]


def use(monkeypatch: pytest.MonkeyPatch, services: list[FakeService]) -> None:
    monkeypatch.setattr(manager, "all_services", lambda _settings: services)


def test_up_records_the_ports_and_later_settings_follow_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, free_ports: list[int]
) -> None:
    services = fakes(free_ports)
    use(monkeypatch, services)
    manager.up(Settings(stack_dir=tmp_path))
    recorded = json.loads((tmp_path / PORTS_FILE).read_text())
    assert recorded == {
        "mongo_port": free_ports[0],
        "smtp_port": free_ports[1],
        "kafka_port": free_ports[2],
    }

    monkeypatch.setenv("LOYALTY_STACK_DIR", str(tmp_path))
    later = load_settings()  # a client with no port settings at all
    assert later.kafka_bootstrap == f"127.0.0.1:{free_ports[2]}"
    assert later.mongo_uri.startswith(f"mongodb://127.0.0.1:{free_ports[0]}/")
    assert later.smtp_port == free_ports[1]


def test_an_explicit_port_wins_over_the_recorded_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / PORTS_FILE).write_text(json.dumps({"kafka_port": 29092, "mongo_port": 29017}))
    monkeypatch.setenv("LOYALTY_STACK_DIR", str(tmp_path))
    monkeypatch.setenv("LOYALTY_KAFKA_PORT", "39092")
    settings = load_settings()
    assert settings.kafka_bootstrap == "127.0.0.1:39092"
    assert settings.mongo_port == 29017


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"kafka_port": "x", "mongo_port": 0}'])
def test_a_damaged_ports_file_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str
) -> None:
    (tmp_path / PORTS_FILE).write_text(content)
    monkeypatch.setenv("LOYALTY_STACK_DIR", str(tmp_path))
    assert load_settings().kafka_port == Settings.model_fields["kafka_port"].default


def test_a_port_change_while_running_is_refused_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, free_ports: list[int]
) -> None:
    services = fakes(free_ports)
    use(monkeypatch, services)
    manager.up(Settings(stack_dir=tmp_path))
    moved = fakes([free_ports[0], free_ports[1], free_ports[2] + 1])
    for service in moved:
        service.alive = True
    use(monkeypatch, moved)
    with pytest.raises(StackError, match="LOYALTY_KAFKA_PORT") as caught:
        manager.up(Settings(stack_dir=tmp_path, kafka_port=free_ports[2] + 1))
    assert f"runs on port {free_ports[2]}" in str(caught.value)
    assert "loyalty stack down" in str(caught.value)
    assert all("start" not in s.calls for s in moved)


def test_a_taken_port_names_the_setting_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, free_ports: list[int]
) -> None:
    services = fakes(free_ports)
    use(monkeypatch, services)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", free_ports[2]))
        squatter.listen()
        with pytest.raises(StackError) as caught:
            manager.up(Settings(stack_dir=tmp_path))
    message = str(caught.value)
    assert message == (
        f"port {free_ports[2]} (kafka) is in use by another program; "
        "set LOYALTY_KAFKA_PORT to a free port"
    )
    assert all(s.calls == [] for s in services)
    assert not (tmp_path / PORTS_FILE).exists()


def test_the_same_port_for_two_services_is_refused(tmp_path: Path, free_ports: list[int]) -> None:
    services = fakes([free_ports[0], free_ports[0], free_ports[2]])
    with pytest.raises(StackError, match="LOYALTY_MONGO_PORT, LOYALTY_SMTP_PORT"):
        manager.check_ports(Settings(stack_dir=tmp_path), list(services))


def test_a_failed_start_stops_what_this_call_started_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, free_ports: list[int]
) -> None:
    services = fakes(free_ports)
    services[0].alive = True  # mongo was already running before this call: it stays
    services[2].fail_on_start = True
    use(monkeypatch, services)
    with pytest.raises(StackError, match="kafka did not answer"):
        manager.up(Settings(stack_dir=tmp_path))
    assert services[0].alive
    assert "stop" not in services[0].calls
    assert services[1].calls == ["install", "start", "stop"]
    assert not services[1].alive
    assert services[2].calls == ["install", "start", "stop"]  # the half-started one too
    assert not (tmp_path / PORTS_FILE).exists()


def test_relative_defaults_are_anchored_at_the_project_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    root = Path(settings_module.__file__).resolve().parent
    assert project_root() == root
    assert settings.stack_dir == root / ".stack"
    assert settings.program_file == root / "program.example.yaml"
    assert settings.program_file.is_file()


def test_a_relative_path_that_is_set_stays_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOYALTY_STACK_DIR", "here")
    assert load_settings().stack_dir == Path("here")
