"""Local single-node Apache Kafka (KRaft) from the official jars on Maven Central."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from string import Template
from typing import TypeVar

from settings import Settings
from stack.process import ServiceStatus, StackError, port_open, read_pid, spawn, stop
from topics.admin import TopicLayoutError, ensure_namespace_topics

T = TypeVar("T")

# The log4j2 backend the broker's SLF4J 1.x logging is bound to (see stack/kafka_pom.xml).
LOG4J_VERSION = "2.25.5"
# Kafka 4.x brokers need Java 17; 3.9 still runs on 11.
MIN_JAVA_FOR_KAFKA_4 = 17
INSTALL_TIMEOUT_S = 900.0
MARKER = ".installed"


def _template(name: str) -> Template:
    """Return one of the stack/kafka_* templates shipped with the package."""
    return Template(resources.files("stack").joinpath(name).read_text(encoding="utf-8"))


def _run_async(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, even when a loop already runs here."""

    # A private thread with its own loop: asyncio.run() in the caller's thread would fail inside
    # a running loop and would reset the thread's current loop (pytest-asyncio's) afterwards.
    async def main() -> T:
        return await factory()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def _version_tuple(version: str) -> tuple[int, ...]:
    """Return (4, 4, 0) for "4.4.0"; non-numeric parts end the tuple."""
    parts: list[int] = []
    for part in version.split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def java_major() -> int:
    """Return the major version of the `java` on PATH, or raise StackError if there is none."""
    if shutil.which("java") is None:
        raise StackError(
            "java not found on PATH; install a JDK 17+ "
            "(e.g. apt-get install openjdk-17-jre-headless)"
        )
    out = subprocess.run(
        ["java", "-version"], capture_output=True, text=True, check=False, timeout=60
    )
    # `java -version` prints e.g. 'openjdk version "17.0.15" 2025-04-15' (or "1.8.0_x") on stderr.
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return 0
    first = int(match.group(1))
    return int(match.group(2) or 0) if first == 1 else first


async def broker_answers(bootstrap: str, within: float = 5.0) -> bool:
    """Return True when a Kafka broker at bootstrap answers a metadata request."""
    from aiokafka.admin import AIOKafkaAdminClient  # noqa: PLC0415 - keeps `stack status` light

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(within * 1000))
    try:
        async with asyncio.timeout(within):
            await admin.start()
            cluster = await admin.describe_cluster()
            return bool(cluster.get("brokers"))
    except Exception:  # noqa: BLE001 - any failure means "not (yet) answering"
        return False
    finally:
        await admin.close()


def new_cluster_id(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """Return a KRaft cluster id: 16 random bytes in URL-safe base64 without padding."""
    while True:
        cid = base64.urlsafe_b64encode(random_bytes()).decode().rstrip("=")
        # The storage tool would read an id that starts with "-" as an option (as Kafka's own
        # generator knows: it never hands such an id out either).
        if not cid.startswith("-"):
            return cid


class KafkaService:
    """Apache Kafka in KRaft mode (broker and controller in one JVM), managed by PID file."""

    name = "kafka"

    def __init__(self, settings: Settings) -> None:
        """Derive every path from the settings; nothing touches the disk here."""
        self.settings = settings
        self.version = settings.kafka_version
        self.root = settings.stack_dir / "kafka"
        self.install_dir = self.root / self.version
        self.libs = self.install_dir / "libs"
        self.data_dir = self.root / "data"
        self.log_dir = self.data_dir / "kraft-logs"
        self.cluster_id_file = self.data_dir / "cluster.id"
        self.pid_file = self.root / "kafka.pid"
        self.log_file = self.root / "kafka.log"
        self.config_file = self.root / "server.properties"
        self.log4j_file = self.root / "log4j2.xml"
        self.bootstrap = f"127.0.0.1:{settings.kafka_port}"
        self.ports = {
            "kafka_port": settings.kafka_port,
            "kafka_controller_port": settings.kafka_controller_port,
        }
        self.start_timeout = settings.stack_start_timeout

    # -- install ---------------------------------------------------------------------------

    def installed(self) -> bool:
        """Return True when this version's jars are complete on disk."""
        return (self.install_dir / MARKER).is_file()

    def install(self) -> None:
        """Fetch kafka_2.13:<version> and a log4j2 backend with Maven (cached; idempotent)."""
        if self.installed():
            return
        java = java_major()  # raises the clear "java not found" line first
        if _version_tuple(self.version) >= (4,) and java < MIN_JAVA_FOR_KAFKA_4:
            raise StackError(
                f"Kafka {self.version} needs Java 17+, found Java {java}; "
                "install openjdk-17 or set LOYALTY_KAFKA_VERSION=3.9.2"
            )
        if shutil.which("mvn") is None:
            raise StackError(
                "mvn not found on PATH; install Maven (e.g. apt-get install maven) "
                "so the Kafka jars can be fetched from Maven Central"
            )
        self.install_dir.mkdir(parents=True, exist_ok=True)
        pom = self.install_dir / "pom.xml"
        pom.write_text(
            _template("kafka_pom.xml").substitute(
                kafka_version=self.version, log4j_version=LOG4J_VERSION
            )
        )
        # Download into a scratch folder and rename at the end so an interrupted install
        # never looks complete.
        staging = self.install_dir / f"libs.partial-{uuid.uuid4().hex[:8]}"
        cmd = [
            # -U: retry artifacts whose earlier failure Maven cached in ~/.m2.
            "mvn", "-q", "-B", "-U", "-f", str(pom), "dependency:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={staging.resolve()}",
        ]  # fmt: skip
        try:
            result = subprocess.run(
                cmd, capture_output=True, text=True, check=False, timeout=INSTALL_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            shutil.rmtree(staging, ignore_errors=True)
            raise StackError(
                f"downloading Kafka {self.version} from Maven Central took over "
                f"{INSTALL_TIMEOUT_S:.0f} s; check network access to repo1.maven.org and retry"
            ) from None
        if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
            errors = [ln for ln in output.splitlines() if ln.startswith("[ERROR]")]
            # Keep Maven's innermost cause, e.g. "Could not find artifact ...:4.9.9 in central".
            reason = errors[0].split(" -> [Help")[0].split(": ")[-1][:300] if errors else "no jars"
            raise StackError(
                f"could not fetch Kafka {self.version} from Maven Central ({reason}); check "
                "network access to repo1.maven.org and that LOYALTY_KAFKA_VERSION is a released "
                "version"
            )
        shutil.rmtree(self.libs, ignore_errors=True)
        staging.rename(self.libs)
        jars = sorted(p.name for p in self.libs.glob("*.jar"))
        (self.install_dir / MARKER).write_text(f"kafka {self.version}\n" + "\n".join(jars) + "\n")

    # -- start -----------------------------------------------------------------------------

    def _java(self) -> list[str]:
        """Return the java command prefix with heap, classpath and logging config."""
        return [
            "java",
            # No -Xms: on a shared dev machine the heap should only grow when it is needed.
            f"-Xmx{self.settings.kafka_heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_file.resolve()}",
            "-cp",
            f"{self.libs.resolve()}/*",
        ]

    def _write_config(self) -> None:
        """Render server.properties and log4j2.xml from the templates (every start)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            _template("kafka_server.properties").substitute(
                kafka_port=self.settings.kafka_port,
                controller_port=self.settings.kafka_controller_port,
                log_dir=self.log_dir.resolve(),
                partitions=self.settings.topic_partitions,
            )
        )
        self.log4j_file.write_text(_template("kafka_log4j2.xml").substitute())

    def _format_storage(self) -> None:
        """Format the KRaft log dir once, with a cluster id kept in the data dir."""
        formatted_by = self.data_dir / "formatted-by"
        if (self.log_dir / "meta.properties").is_file():
            # Metadata written by a newer Kafka cannot be read by an older one.
            older = formatted_by.is_file() and _version_tuple(self.version) < _version_tuple(
                formatted_by.read_text().strip()
            )
            if older:
                raise StackError(
                    f"{self.data_dir} was written by Kafka {formatted_by.read_text().strip()}, "
                    f"newer than {self.version}; set LOYALTY_KAFKA_VERSION back or delete "
                    f"{self.data_dir} (its topics and offsets are lost)"
                )
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        kept = self.cluster_id_file.read_text().strip() if self.cluster_id_file.is_file() else ""
        if not kept or kept.startswith("-"):
            # Not formatted yet (checked above), so a bad id an older version kept can go.
            self.cluster_id_file.write_text(new_cluster_id() + "\n")
        cluster_id = self.cluster_id_file.read_text().strip()
        cmd = [
            *self._java(), "kafka.tools.StorageTool", "format",
            "--config", str(self.config_file.resolve()),
            "--cluster-id", cluster_id, "--ignore-formatted",
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
        if result.returncode != 0:
            last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise StackError(f"formatting Kafka storage in {self.log_dir} failed: {last[0]}")
        formatted_by.write_text(self.version + "\n")

    def healthy(self, timeout: float = 5.0) -> bool:
        """Return True when the broker on our port answers a metadata request."""
        return _run_async(lambda: broker_answers(self.bootstrap, timeout))

    def _log_tail(self, since: int) -> str:
        """Return the last log lines written after byte offset `since` (this start only)."""
        try:
            with self.log_file.open("rb") as log:
                log.seek(since)
                text = log.read().decode(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-20:]) or "(nothing logged)"

    def _wait_healthy(self, pid: int, log_offset: int = 0) -> None:
        """Block until the broker answers, or raise with the log tail if it dies or stalls."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if read_pid(self.pid_file) != pid:
                raise StackError(
                    f"Kafka exited during start-up; last lines of {self.log_file}:\n"
                    + self._log_tail(log_offset)
                )
            if port_open(self.settings.kafka_port) and self.healthy(timeout=3.0):
                return
            time.sleep(0.3)
        raise StackError(
            f"Kafka did not answer on {self.bootstrap} within {self.start_timeout:.0f} s; "
            f"last lines of {self.log_file}:\n" + self._log_tail(log_offset)
        )

    def _ensure_topics(self) -> None:
        """Create the contract's topics (idempotent), turning layout errors into StackError."""
        partitions, namespace = self.settings.topic_partitions, self.settings.topic_namespace
        try:
            _run_async(lambda: ensure_namespace_topics(self.bootstrap, partitions, namespace))
        except TopicLayoutError as exc:
            raise StackError(str(exc)) from None

    def _our_pid(self) -> int | None:
        """Return the PID from our PID file if that process is still our broker, else None."""
        pid = read_pid(self.pid_file)
        if pid is None:
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return pid  # no /proc (not Linux): trust the PID file
        # After a reboot the recorded PID may belong to an unrelated process.
        if b"kafka.Kafka" not in cmdline or str(self.config_file.resolve()).encode() not in cmdline:
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def running(self) -> bool:
        """Return True when this stack's broker process is alive."""
        return self._our_pid() is not None

    def start(self) -> None:
        """Start the broker unless ours already runs, wait until it answers, create topics."""
        pid = self._our_pid()
        if pid is not None:
            # Ours is running (or still starting): wait for it rather than start a second one.
            self._wait_healthy(pid)
            self._ensure_topics()
            return
        for port, var in (
            (self.settings.kafka_port, "LOYALTY_KAFKA_PORT"),
            (self.settings.kafka_controller_port, "LOYALTY_KAFKA_CONTROLLER_PORT"),
        ):
            if port_open(port):
                raise StackError(
                    f"port {port} is in use by another program; set {var} to a free port"
                )
        # After the port check: a port clash should not first cost a download.
        self.install()
        self._write_config()
        self._format_storage()
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        pid = spawn(
            [*self._java(), "kafka.Kafka", str(self.config_file.resolve())],
            pid_file=self.pid_file,
            log_file=self.log_file,
        )
        self._wait_healthy(pid, log_offset)
        self._ensure_topics()

    # -- stop / status ---------------------------------------------------------------------

    def stop(self) -> bool:
        """Stop the broker this stack started (by PID file); True if one was running."""
        # A controlled KRaft shutdown takes a few seconds; give it time before SIGKILL.
        return stop(self.pid_file, timeout=30.0)

    def status(self) -> ServiceStatus:
        """Report port, data dir, PID, health and the Kafka version."""
        pid = self._our_pid()
        healthy = pid is not None and port_open(self.settings.kafka_port) and self.healthy()
        detail = f"Apache Kafka {self.version} (KRaft)"
        if not self.installed():
            detail += ", not installed"
        elif pid is None and port_open(self.settings.kafka_port):
            detail += f", port {self.settings.kafka_port} is used by another program"
        return ServiceStatus(
            name=self.name,
            port=self.settings.kafka_port,
            data_dir=self.data_dir,
            pid=pid,
            healthy=healthy,
            detail=detail,
        )
