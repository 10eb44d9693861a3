"""`loyalty stack` end to end on a stack of its own (temp dir, free ports), never the shared one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from settings import Settings
from stack.kafka import KafkaService
from stack.process import read_pid
from tests.integration.pipeline_harness import share_kafka_jars

pytestmark = pytest.mark.integration

LOYALTY = str(Path(sys.executable).parent / "loyalty")
# Guards against a hang only; a refused `up` answers in a second or two.
HANG_GUARD_S = 300


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now (bound, read, released)."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def loyalty(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the `loyalty` command as a user would."""
    return subprocess.run(
        [LOYALTY, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=HANG_GUARD_S,
    )


def base_env(stack_dir: Path) -> dict[str, str]:
    """The caller's environment without LOYALTY_* settings, pointed at stack_dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env["LOYALTY_STACK_DIR"] = str(stack_dir)
    return env


@pytest.fixture(autouse=True)
def _no_loyalty_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read settings in this process as a fresh shell would: the caller's LOYALTY_* unset."""
    for name in [k for k in os.environ if k.startswith("LOYALTY_")]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def own_stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A whole stack started by `loyalty stack up` in a dir with a space, stopped afterwards."""
    stack_dir = tmp_path_factory.mktemp("own") / "my stack"
    share_kafka_jars(settings, stack_dir)
    kafka, controller, mongo, smtp = free_ports(4)
    env = base_env(stack_dir) | {
        "LOYALTY_KAFKA_PORT": str(kafka),
        "LOYALTY_KAFKA_CONTROLLER_PORT": str(controller),
        "LOYALTY_MONGO_PORT": str(mongo),
        "LOYALTY_SMTP_PORT": str(smtp),
    }
    result = loyalty("stack", "up", env=env, cwd=stack_dir.parent)
    try:
        assert result.returncode == 0, result.stderr + result.stdout
        yield stack_dir
    finally:
        down = loyalty("stack", "down", env=base_env(stack_dir), cwd=stack_dir.parent)
        assert down.returncode == 0, down.stderr


def test_status_from_another_directory_finds_the_ports_up_chose(own_stack: Path) -> None:
    elsewhere = own_stack.parent / "some" / "sub dir"
    elsewhere.mkdir(parents=True)
    recorded = Settings(stack_dir=own_stack)  # no ports given: they come from the stack dir
    result = loyalty("stack", "status", env=base_env(own_stack), cwd=elsewhere)
    assert result.returncode == 0, result.stdout + result.stderr
    for port in (recorded.kafka_port, recorded.mongo_port, recorded.smtp_port):
        assert str(port) in result.stdout


def test_a_second_up_with_another_port_is_refused_without_waiting(own_stack: Path) -> None:
    recorded = Settings(stack_dir=own_stack)
    (moved,) = free_ports(1)
    env = base_env(own_stack) | {"LOYALTY_KAFKA_PORT": str(moved)}
    result = loyalty("stack", "up", env=env, cwd=own_stack)
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert f"runs on port {recorded.kafka_port}, not {moved}" in line
    assert "LOYALTY_KAFKA_PORT" in line
    # Nothing was restarted: the broker this stack started still answers on its port.
    assert KafkaService(recorded).status().healthy


def test_a_second_up_without_settings_is_a_no_op(own_stack: Path) -> None:
    recorded = Settings(stack_dir=own_stack)
    pid = read_pid(KafkaService(recorded).pid_file)
    result = loyalty("stack", "up", env=base_env(own_stack), cwd=own_stack)
    assert result.returncode == 0, result.stderr
    assert read_pid(KafkaService(recorded).pid_file) == pid


def test_a_taken_port_fails_in_one_line_and_leaves_nothing_running(tmp_path: Path) -> None:
    stack_dir = tmp_path / "taken"
    kafka, controller, mongo, smtp = free_ports(4)
    env = base_env(stack_dir) | {
        "LOYALTY_KAFKA_PORT": str(kafka),
        "LOYALTY_KAFKA_CONTROLLER_PORT": str(controller),
        "LOYALTY_MONGO_PORT": str(mongo),
        "LOYALTY_SMTP_PORT": str(smtp),
    }
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", kafka))
        squatter.listen()
        result = loyalty("stack", "up", env=env, cwd=tmp_path)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        f"error: port {kafka} (kafka) is in use by another program; "
        "set LOYALTY_KAFKA_PORT to a free port"
    )
    pids = [read_pid(p) for p in stack_dir.rglob("*.pid")]
    assert [p for p in pids if p is not None] == []


def test_a_service_that_fails_to_start_shows_its_log_and_up_stops_the_others(
    settings: Settings, tmp_path: Path
) -> None:
    stack_dir = tmp_path / "broken"
    share_kafka_jars(settings, stack_dir)
    # A log dir formatted for another node: the broker exits at start-up, after MongoDB and
    # the SMTP sink were started by the same `up`.
    log_dir = stack_dir / "kafka" / "data" / "kraft-logs"
    log_dir.mkdir(parents=True)
    (log_dir / "meta.properties").write_text(
        "version=1\nnode.id=99\ncluster.id=oq3pzGAYRrSalth6mvShFg\n"
        "directory.id=oAsDpa9GMOnY8vWrYQyX8A\n"
    )
    kafka, controller, mongo, smtp = free_ports(4)
    env = base_env(stack_dir) | {
        "LOYALTY_KAFKA_PORT": str(kafka),
        "LOYALTY_KAFKA_CONTROLLER_PORT": str(controller),
        "LOYALTY_MONGO_PORT": str(mongo),
        "LOYALTY_SMTP_PORT": str(smtp),
        "LOYALTY_STACK_START_TIMEOUT": "60",
    }
    result = loyalty("stack", "up", env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert f"{stack_dir / 'kafka' / 'kafka.log'}" in result.stderr  # where the whole log is
    assert "node" in result.stderr.lower()  # the broker's own last lines say why
    assert (stack_dir / "mongo" / "mongo.log").exists()  # MongoDB had been started ...
    assert list(stack_dir.rglob("*.pid")) == []  # ... and was stopped again, Kafka cleaned up
