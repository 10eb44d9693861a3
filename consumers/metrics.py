"""Prometheus metrics of the downstream consumers (free of personal data: labels are kinds)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ConsumerMetrics:
    """Every metric ``loyalty consumers`` exposes on ``/metrics``, in one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "loyalty_consumer_messages",
            "Messages finished by a consumer, by outcome (done, skipped, dead_letter).",
            ["consumer", "outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            "loyalty_consumer_dead_letters",
            "Messages a consumer sent to the dead-letter topic, by error code.",
            ["consumer", "code"],
            registry=r,
        )
        self.retries = Counter(
            "loyalty_consumer_retries", "Retries of a failed message.", ["consumer"], registry=r
        )
        self.outage = Gauge(
            "loyalty_consumer_dependency_down",
            "1 while a consumer waits for a server it needs (SMTP, MongoDB).",
            ["consumer"],
            registry=r,
        )
        self.outage_retries = Counter(
            "loyalty_consumer_outage_retries",
            "Batches put back because a server the consumer needs was down.",
            ["consumer"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "loyalty_consumer_batch_seconds",
            "Time to finish and commit one polled batch.",
            ["consumer"],
            registry=r,
        )
        self.emails = Counter(
            "loyalty_notifier_emails",
            "Notifications by result: sent, or why none was sent.",
            ["kind", "result"],
            registry=r,
        )
        self.coupons = Counter(
            "loyalty_rewards_coupon_events",
            "Reward events applied to the coupon registry, by type.",
            ["event"],
            registry=r,
        )
        self.duplicate_codes = Counter(
            "loyalty_rewards_duplicate_codes",
            "Grants refused by the registry because another grant holds the same code.",
            registry=r,
        )
        self.tier_changes = Counter(
            "loyalty_analytics_tier_changes",
            "Tier changes appended by the analytics example, by direction.",
            ["direction"],
            registry=r,
        )
