"""Create the contract's topics with the right partition counts (idempotent)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from topics.names import ALL_TOPICS, INPUT_TOPICS, Topics

# Kafka error codes that mean "fine, it is already there" for CreateTopics.
_TOPIC_ALREADY_EXISTS = 36


class TopicLayoutError(Exception):
    """A topic is missing, cannot be created, or has a partition count the design forbids."""


SERVICE_BROKER_WAIT = 120.0
"""Seconds a starting service (worker, consumers) waits for its broker: a restart takes longer
than the 30 s a one-off command gets (a controlled shutdown, then a JVM start)."""
BROKER_RETRY_MAX = 2.0
"""Longest pause, in seconds, between two attempts to reach a broker that refuses connections."""


async def _start_when_reachable(admin: Any) -> None:
    """Start the admin client, trying again while no broker answers (until the caller's timeout).

    A process started while the broker restarts (a rolling restart, containers started in any
    order, a crashed service restarted at once) should wait for it like it waits for anything
    else, not exit at the first refused connection.
    """
    from aiokafka.errors import KafkaConnectionError  # noqa: PLC0415 - heavy import

    pause = 0.1
    while True:
        try:
            await admin.start()
        except KafkaConnectionError:
            await asyncio.sleep(pause)
            pause = min(2 * pause, BROKER_RETRY_MAX)
        else:
            return


async def _partition_counts(admin: Any) -> dict[str, int]:
    """Return {topic: partition count} for every topic the cluster knows."""
    # All topics (describe_topics(None)) on purpose: naming topics could auto-create them with
    # the broker's default partition count, which would hide a missing topic behind a wrong layout.
    described = await admin.describe_topics(None)
    return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}


def _check_counts(counts: dict[str, int], partitions: int, strict: Iterable[str]) -> None:
    """Raise TopicLayoutError unless every existing strict topic has `partitions` partitions."""
    wrong = {t: counts[t] for t in strict if t in counts and counts[t] != partitions}
    if wrong:
        found = ", ".join(f"{t} has {n}" for t, n in sorted(wrong.items()))
        raise TopicLayoutError(
            f"input topics must all have {partitions} partitions (one worker owns a customer on "
            f"every input topic) but {found}; set LOYALTY_TOPIC_PARTITIONS to match or recreate "
            "the topics"
        )


async def ensure_topics(
    bootstrap: str,
    partitions: int,
    *,
    topics: Iterable[str] = ALL_TOPICS,
    same_count: Iterable[str] = INPUT_TOPICS,
    replication_factor: int = 1,
    within: float = 30.0,
    client_options: Mapping[str, Any] | None = None,
    wait_for_broker: bool = False,
) -> list[str]:
    """Create missing topics with `partitions` partitions; return the names created.

    With ``wait_for_broker`` (the long-running services) a broker that refuses connections is
    tried again until ``within`` runs out; a one-off command fails at the first refusal.
    """
    # Topics in `same_count` (the input topics) must have exactly `partitions` partitions or
    # TopicLayoutError is raised; other existing topics are left as they are.
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: PLC0415 - heavy import
    from aiokafka.errors import KafkaError  # noqa: PLC0415

    wanted = list(dict.fromkeys(topics))
    strict = list(same_count)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(within * 1000),
        **(client_options or {}),  # SSL/SASL: client_options.kafka_options(settings)
    )
    try:
        async with asyncio.timeout(within):
            await (_start_when_reachable(admin) if wait_for_broker else admin.start())
            counts = await _partition_counts(admin)
            # Check before creating anything: a wrong existing layout must not be extended.
            _check_counts(counts, partitions, strict)
            missing = [t for t in wanted if t not in counts]
            if missing:
                response = await admin.create_topics(
                    [NewTopic(t, partitions, replication_factor) for t in missing],
                    timeout_ms=int(within * 1000),
                )
                for item in response.to_object()["topic_errors"]:
                    code = item["error_code"]
                    if code not in (0, _TOPIC_ALREADY_EXISTS):
                        message = item.get("error_message") or f"error code {code}"
                        raise TopicLayoutError(f"could not create topic {item['topic']}: {message}")
            # CreateTopics returns before every broker's metadata cache has the topic; wait
            # until metadata lists all of them so callers can produce at once.
            while True:
                counts = await _partition_counts(admin)
                if all(t in counts for t in wanted):
                    break
                await asyncio.sleep(0.1)
            _check_counts(counts, partitions, strict)
            return missing
    except KafkaError as exc:
        raise TopicLayoutError(f"topic set-up on Kafka at {bootstrap} failed: {exc}") from exc
    except TimeoutError:
        raise TopicLayoutError(
            f"Kafka at {bootstrap} did not answer or did not confirm topics {', '.join(wanted)} "
            f"within {within:.0f} s"
        ) from None
    finally:
        await admin.close()


async def ensure_namespace_topics(
    bootstrap: str,
    partitions: int,
    namespace: str = "",
    *,
    within: float = 30.0,
    client_options: Mapping[str, Any] | None = None,
    wait_for_broker: bool = False,
) -> list[str]:
    """Create the contract's topics under ``namespace``; return the names created."""
    names = Topics(namespace)
    return await ensure_topics(
        bootstrap,
        partitions,
        topics=names.all,
        same_count=names.inputs,
        within=within,
        client_options=client_options,
        wait_for_broker=wait_for_broker,
    )
