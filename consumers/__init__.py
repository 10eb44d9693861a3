"""Downstream consumers: rewards issuer, email notifier, analytics example."""
