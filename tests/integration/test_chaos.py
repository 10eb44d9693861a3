"""Mixed load under combined faults, checked against an oracle: nothing lost, nothing doubled.

One seeded run (``LOYALTY_CHAOS_SEED``, printed) publishes a mixed load (customers, orders with
refunds and cancellations, adjustments, redemptions, tier commands) and runs a CSV points import
through ``loyalty import points`` against a real ``loyalty worker`` and ``loyalty consumers``
(coupon registry and notifier). Meanwhile, at seeded moments, it SIGKILLs and restarts the worker
and the consumers several times, restarts the Kafka broker once (killing and starting the worker
while it is down), SIGKILLs and restarts the MongoDB-compatible server once (killing and starting
the consumers while it is down), and SIGSTOPs the SMTP sink for a while. Broker, database and
sink are the test's own (free ports, files under tmp_path).

At the end every customer's state equals the oracle's (``models.decide`` per customer, in
order), every expected output id is on its topic (repeats allowed), every coupon matches its
grant, every expected email arrived (by its deterministic Message-ID), no outbox, parked message
or email attempt is left, every consumer group has committed everything, nothing was
dead-lettered. A duplicate email is allowed only for a send whose outcome a crash made unknown
(the notifier logs each such resend): at most two per SMTP connection per crash that can fall in
that window (a consumers SIGKILL, the MongoDB SIGKILL that loses the sent record).

The SMTP pause stays shorter than the notifier's SMTP timeout: a server that stalls after the
final "." past the client's timeout and then accepts the message makes a duplicate no client
can prevent (RFC 1047), which would hide the duplicates this test is about.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from program_file import load_program
from settings import Settings
from stack.worker import worker_env
from tests.integration.chaos_support import (
    SEED_VARIABLE,
    Consumers,
    Plan,
    Record,
    Servers,
    chaos_seed,
    check_mail,
    coupon_problems,
    expected_coupons,
    group_lags,
    leftovers,
    own_servers,
    read_topic,
    received_mail,
)
from tests.integration.pipeline_harness import (
    OutputReader,
    Pipeline,
    Worker,
    crash,
    free_port,
    summary,
    wait_for_oracle,
    workers_stopped,
)
from tests.integration.pipeline_load import generate
from tests.integration.pipeline_oracle import Load, Oracle, Published
from tests.integration.waiting import eventually
from topics import names

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

CUSTOMERS = 500
IMPORTED = 30
"""Customers that only sign up and get points from the CSV import."""
WINDOW = 150.0
"""Seconds over which the faults are spread (the load is published over most of it)."""
KILLS = 4
"""SIGKILLs of the worker, and of the consumers, each."""
SMTP_TIMEOUT = 45.0
SMTP_PAUSE_MAX = 20.0
SMTP_CONNECTIONS = 4
CONVERGE_SECONDS = 300.0
LOYALTY = str(Path(sys.executable).parent / "loyalty")


def _signups(unique: str) -> list[Published]:
    """The customers the CSV import gives points to: created first, nothing else."""
    return [
        Published(
            names.CUSTOMERS,
            {
                "id": f"imp-{unique}-{n:03d}:signup",
                "type": "customer.upserted",
                "customer_id": f"imp-{unique}-{n:03d}",
                "occurred_at": datetime.now(UTC).isoformat(),
                "data": {"email": f"imp-{unique}-{n:03d}@example.test", "first_name": "Imported"},
                "source": "storefront",
            },
        )
        for n in range(IMPORTED)
    ]


def _points_csv(path: Path, signups: list[Published], rng: random.Random, unique: str) -> int:
    """Write a points import: one row per imported customer and two bad rows; return valid."""
    rows = ["email,points,internal_note"]
    rows += [f"{s.envelope['data']['email']},{rng.randint(10, 900)},chaos import" for s in signups]
    rows.insert(5, f"nobody-{unique}@example.test,100,unknown customer")
    rows.insert(9, f"{signups[0].envelope['data']['email'].upper()},ten,not a number")
    path.write_text("\n".join(rows) + "\n")
    return len(signups)


class Chaos:
    """Runs the load and the faults of one plan and records what happened."""

    def __init__(
        self,
        plan: Plan,
        servers: Servers,
        pipeline: Pipeline,
        worker: Worker,
        consumers: Consumers,
        stream: list[Published],
        import_file: Path,
    ) -> None:
        self.plan = plan
        self.servers = servers
        self.pipeline = pipeline
        self.worker = worker
        self.consumers = consumers
        self.stream = stream
        self.import_file = import_file
        self.record = Record()
        self.broker = asyncio.Lock()
        """Held while the broker restarts: the load's producer waits it out (the shop's
        producers are not under test; a producer that gives up mid-batch may reorder)."""
        self.import_runs: list[str] = []
        self.restarting = {"worker": asyncio.Lock(), "consumers": asyncio.Lock()}
        """Held while a process is killed and started again (two faults may aim at it)."""

    async def run(self) -> None:
        self.record = Record()
        await asyncio.gather(
            self._publish(),
            self._kills(self.worker, self.plan.worker_kills, "worker"),
            self._kills(self.consumers, self.plan.consumers_kills, "consumers"),
            self._kafka(),
            self._mongo(),
            self._smtp(),
            self._import(),
        )

    async def _publish(self) -> None:
        slices = 20
        size = -(-len(self.stream) // slices)
        for number in range(slices):
            await self.record.until(self.plan.publish_seconds * number / slices)
            async with self.broker:
                await self.pipeline.publish(self.stream[number * size : (number + 1) * size])

    async def _kills(
        self, process: Worker | Consumers, kills: tuple[tuple[float, float], ...], kind: str
    ) -> None:
        for at, down in kills:
            await self.record.until(at)
            await self._kill_and_start(process, kind, down)

    async def _kill_and_start(self, process: Worker | Consumers, kind: str, down: float) -> None:
        async with self.restarting[kind]:
            if not process.running:
                self.record.unexpected_exits.append(f"{kind} had exited on its own")
            await asyncio.to_thread(process.kill)
            self.record.note(f"{kind} kills", f"SIGKILL {kind}")
            await asyncio.sleep(down)
            process.start()
            self.record.note(f"{kind} starts", f"{kind} started again")

    async def _kafka(self) -> None:
        at, down = self.plan.kafka_restart
        await self.record.until(at)
        async with self.broker:
            await asyncio.to_thread(self.servers.kafka.stop)
            self.record.note("Kafka restarts", "Kafka broker stopped")
            # A worker that crashes now starts while no broker answers: it must wait for it.
            await self._kill_and_start(self.worker, "worker", down)
            await asyncio.to_thread(self.servers.kafka.start)
            self.record.note("Kafka starts", "Kafka broker answers again")

    async def _mongo(self) -> None:
        at, down = self.plan.mongo_restart
        await self.record.until(at)
        await asyncio.to_thread(crash, self.servers.mongo)
        self.record.note("MongoDB restarts", "MongoDB-compatible server SIGKILLed")
        # Consumers that crash now start while MongoDB is down: they must wait for it.
        await self._kill_and_start(self.consumers, "consumers", down)
        await asyncio.to_thread(self.servers.mongo.start)
        self.record.note("MongoDB starts", "MongoDB-compatible server answers again")

    async def _smtp(self) -> None:
        at, pause = self.plan.smtp_pause
        await self.record.until(at)
        pid = self.servers.smtp_pid
        assert pid is not None, "the SMTP sink is not running"
        os.kill(pid, signal.SIGSTOP)
        self.record.note("SMTP pauses", "SMTP sink SIGSTOPped")
        try:
            await asyncio.sleep(pause)
        finally:
            os.kill(pid, signal.SIGCONT)
        self.record.note("SMTP resumes", "SMTP sink SIGCONTinued")

    async def _import(self) -> None:
        """Run the import; while a fault makes it fail, run it again with the same batch id."""
        await self.record.until(self.plan.import_at)
        env = {**os.environ, **worker_env(self.pipeline.settings)}
        for attempt in range(1, 30):
            process = await asyncio.create_subprocess_exec(
                LOYALTY,
                "import",
                "points",
                str(self.import_file),
                "--batch-id",
                self.batch_id,
                "--json",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(process.communicate(), timeout=180)
            self.import_runs.append(f"run {attempt}: exit {process.returncode}\n{err.decode()}")
            self.record.note("import runs", f"CSV import run {attempt}: exit {process.returncode}")
            if process.returncode == 0:
                self.import_report = out.decode()
                return
            await asyncio.sleep(2)
        pytest.fail("the CSV import never completed:\n" + "\n".join(self.import_runs[-3:]))

    @property
    def batch_id(self) -> str:
        return f"chaos-{self.pipeline.namespace.strip('.')}"


async def _imported_commands(settings: Settings, batch_id: str) -> list[Published]:
    """The import's commands as they are on the adjustments topic, by row (repeats dropped)."""
    found = await read_topic(settings, settings.topic_namespace + names.ADJUSTMENTS)
    ours = {m["id"]: m for m in found if str(m["id"]).startswith(f"{batch_id}:")}
    return [
        Published(names.ADJUSTMENTS, ours[key])
        for key in sorted(ours, key=lambda k: int(k.rsplit(":", 1)[1]))
    ]


def _with_import(
    load: Load,
    program_now: datetime,
    signups: list[Published],
    commands: list[Published],
    settings: Settings,
) -> Load:
    """The load's expectations plus the imported customers' (signup, then their import row)."""
    oracle = Oracle(load_program(settings.program_file), program_now)
    for item in [*signups, *commands]:
        oracle.apply(item.envelope)
    outputs = {t: set(ids) for t, ids in load.expected_outputs.items()}
    for topic, ids in oracle.outputs.items():
        outputs.setdefault(topic, set()).update(ids)
    return Load(
        stream=[*load.stream, *signups, *commands],
        customers=[*load.customers, *(str(s.envelope["customer_id"]) for s in signups)],
        now=load.now,
        expected={**load.expected, **oracle.states},
        expected_outputs=outputs,
        notifications={**load.notifications, **oracle.notifications},
    )


async def test_mixed_load_survives_combined_faults(
    stack: Settings, unique: str, tmp_path: Path
) -> None:
    seed = chaos_seed()
    print(f"\nchaos: seed {seed} (replay with {SEED_VARIABLE}={seed})", flush=True)
    rng = random.Random(seed)
    program = load_program(stack.program_file)
    load = generate(program, customers=CUSTOMERS, seed=seed, run_id=unique)
    signups = _signups(unique)
    plan = Plan.draw(rng, window=WINDOW, kills=KILLS, smtp_pause_max=SMTP_PAUSE_MAX)
    print(f"chaos: plan\n{plan.describe()}", flush=True)
    import_file = tmp_path / "points.csv"
    valid_rows = _points_csv(import_file, signups, rng, unique)
    namespace = f"ch{unique}."
    with own_servers(stack, tmp_path / "servers", namespace) as servers:
        pipeline = Pipeline.isolated(
            servers.settings,
            unique,
            topic_namespace=namespace,
            smtp_connections=SMTP_CONNECTIONS,
            consumers_web_port=free_port(),
        )
        settings = pipeline.settings
        await pipeline.create_topics()
        worker = pipeline.worker(tmp_path / "worker")
        consumers = Consumers(
            settings, log_file=tmp_path / "consumers" / "consumers.log", smtp_timeout=SMTP_TIMEOUT
        )
        chaos = Chaos(plan, servers, pipeline, worker, consumers, load.stream, import_file)
        with workers_stopped(worker, consumers):  # type: ignore[arg-type]
            worker.start()
            consumers.start()
            await worker.ready()
            await consumers.ready()
            await pipeline.publish(signups)

            async def signed_up() -> bool:
                stored = await pipeline.read_states(s.envelope["customer_id"] for s in signups)
                return len(stored) == len(signups)

            await eventually(signed_up, within=120, what="the imported customers to exist")
            started = time.monotonic()
            await chaos.run()
            faults_over = time.monotonic()
            print(f"chaos: faults over after {faults_over - started:.1f} s", flush=True)
            await worker.ready(within=180)
            await consumers.ready(within=180)

            commands = await _imported_commands(settings, chaos.batch_id)
            assert len(commands) == valid_rows, chaos.import_runs[-1]
            expected = _with_import(load, datetime.now(UTC), signups, commands, settings)
            async with OutputReader(settings, namespace).running() as reader:
                await wait_for_oracle(
                    pipeline, expected, reader, within=CONVERGE_SECONDS, workers=[worker]
                )
                required = {
                    nid
                    for nid, cid in expected.notifications.items()
                    if expected.expected[cid].status == "active"
                }
                mail_dir = servers.smtp.mail_dir
                sender = settings.mail_from

                async def all_mail() -> bool:
                    check = check_mail(
                        expected.notifications, required, sender, received_mail(mail_dir)
                    )
                    return not check.missing

                await eventually(
                    all_mail,
                    within=CONVERGE_SECONDS,
                    what="every expected email",
                    detail=lambda: (
                        _mail_detail(expected, required, sender, mail_dir) + consumers.describe()
                    ),
                    interval=1.0,
                )
                grants = expected_coupons(expected.expected)
                coupons: list[str] = []

                async def coupons_match() -> bool:
                    coupons[:] = await coupon_problems(settings, grants)
                    return not coupons

                await eventually(
                    coupons_match,
                    within=CONVERGE_SECONDS,
                    what="the coupon registry to match the grants",
                    detail=lambda: summary(coupons),
                    interval=1.0,
                )
                waiting: dict[str, int] = {}

                async def quiet() -> bool:
                    waiting.clear()
                    waiting.update(await leftovers(settings))
                    waiting.update(
                        {f"lag of {g}": n for g, n in (await group_lags(settings)).items()}
                    )
                    return not any(waiting.values())

                await eventually(
                    quiet,
                    within=CONVERGE_SECONDS,
                    what="no outbox, parked message, email attempt or uncommitted record left",
                    detail=lambda: str(waiting),
                    interval=1.0,
                )
                converged = time.monotonic()
                dead_letters = list(reader.dead_letters)
                distinct_outputs = reader.distinct
                output_records = sum(sum(c.values()) for c in reader.ids.values())
            stops = {}
            for process in (worker, consumers):
                began = time.monotonic()
                process.signal(signal.SIGTERM)
                exited = await asyncio.to_thread(process.wait, 60.0)
                stops[process.name] = (
                    exited,
                    time.monotonic() - began,
                    process.process.returncode if process.process else None,
                )

        mail = check_mail(expected.notifications, required, sender, received_mail(mail_dir))
        resent = consumers.resent()
        counts = chaos.record.counts
        crashes_in_window = counts["consumers kills"] + counts["MongoDB restarts"]
        allowed = 2 * SMTP_CONNECTIONS * crashes_in_window
        print(
            "chaos: numbers\n"
            f"  seed {seed}; messages published {len(expected.stream)} "
            f"({len(load.stream)} load, {len(signups)} signups, {len(commands)} import rows, "
            f"{len(chaos.import_runs)} import run(s)); customers {len(expected.customers)}\n"
            f"  faults: {dict(counts)}\n"
            f"  outputs: {distinct_outputs} distinct ids, {output_records} records "
            f"({output_records - distinct_outputs} repeats)\n"
            f"  emails: {len(expected.notifications)} requested, {len(required)} required, "
            f"{mail.received} received, {mail.optional_received} optional ones received, "
            f"{sum(n - 1 for n in mail.duplicated.values())} duplicate(s) "
            f"{sorted(mail.duplicated)} (allowed {allowed}); resends announced {len(resent)}\n"
            f"  faults over after {faults_over - started:.1f} s; converged "
            f"{converged - faults_over:.1f} s later\n"
            f"  SIGTERM stop (exited, seconds, exit code): {stops}",
            flush=True,
        )
        print("chaos: events\n" + "\n".join(chaos.record.events), flush=True)
        problems = []
        problems += [f"dead letter: {d}" for d in dead_letters[:10]]
        problems += [f"email never requested arrived: {m}" for m in mail.unexpected[:10]]
        problems += [f"email to the wrong address: {m}" for m in mail.wrong_recipient[:10]]
        problems += [f"{m}" for m in chaos.record.unexpected_exits]
        unannounced = sorted(set(mail.duplicated) - resent)
        if unannounced:
            # Writes are journaled (LOYALTY_MONGO_JOURNAL): an attempt record the server
            # acknowledged survives its SIGKILL, so every resend is announced.
            problems.append(
                f"duplicate emails the notifier did not announce as resends: {unannounced}"
            )
        duplicates = sum(n - 1 for n in mail.duplicated.values())
        if duplicates > allowed:
            problems.append(
                f"{duplicates} duplicate emails, more than {allowed} (2 per SMTP connection per "
                "consumers kill or MongoDB crash)"
            )
        for name, (exited, _, code) in stops.items():
            if not exited or code != 0:
                problems.append(
                    f"{name} did not exit cleanly on SIGTERM: exited {exited}, code {code}"
                )
        assert not problems, "\n".join(problems)


def _mail_detail(expected: Load, required: set[str], sender: str, mail_dir: Path) -> str:
    check = check_mail(expected.notifications, required, sender, received_mail(mail_dir))
    return (
        f"{len(check.missing)} missing, e.g. {check.missing[:5]}; "
        f"{len(check.unexpected)} unexpected; received {check.received}\n"
    )
