"""Client options for real deployments, built from settings: Kafka SSL/SASL, MongoDB TLS/auth.

Every Kafka client the service makes (the faust worker, aiokafka producers, consumers and admin
clients) and every MongoDB client takes its security options from here, so one set of
``LOYALTY_KAFKA_*`` / ``LOYALTY_MONGO_*`` settings reaches all of them (docs/deployment.md).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiokafka.helpers import create_ssl_context

from settings import ENV_PREFIX, Settings, SettingsError

if TYPE_CHECKING:
    import faust


def _kafka_ssl_context(settings: Settings) -> ssl.SSLContext:
    for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
        path: Path | None = getattr(settings, name)
        if path is not None and not path.is_file():
            raise SettingsError(f"{ENV_PREFIX}{name.upper()}: no file at {path}")
    if (settings.kafka_ssl_certfile is None) != (settings.kafka_ssl_keyfile is None):
        raise SettingsError(
            f"{ENV_PREFIX}KAFKA_SSL_CERTFILE and {ENV_PREFIX}KAFKA_SSL_KEYFILE go together "
            "(a client certificate needs its key); set both or neither"
        )
    password = settings.kafka_ssl_key_password.get_secret_value() or None
    context: ssl.SSLContext = create_ssl_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
        certfile=str(settings.kafka_ssl_certfile) if settings.kafka_ssl_certfile else None,
        keyfile=str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
        password=password,
    )
    return context


def _sasl_credentials(settings: Settings) -> tuple[str, str]:
    username = settings.kafka_sasl_username
    password = settings.kafka_sasl_password.get_secret_value()
    if not username or not password:
        raise SettingsError(
            f"{ENV_PREFIX}KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs "
            f"{ENV_PREFIX}KAFKA_SASL_USERNAME and {ENV_PREFIX}KAFKA_SASL_PASSWORD"
        )
    return username, password


def kafka_options(settings: Settings) -> dict[str, Any]:
    """Return the security keyword arguments of every aiokafka client (empty for plaintext)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in {"SSL", "SASL_SSL"}:
        options["ssl_context"] = _kafka_ssl_context(settings)
    if protocol in {"SASL_PLAINTEXT", "SASL_SSL"}:
        username, password = _sasl_credentials(settings)
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = username
        options["sasl_plain_password"] = password
    return options


def faust_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """Return faust's ``broker_credentials`` for the same settings (None for plaintext)."""
    import faust  # noqa: PLC0415 - heavy import, only the worker needs it

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(_kafka_ssl_context(settings))
    username, password = _sasl_credentials(settings)
    return faust.SASLCredentials(
        username=username,
        password=password,
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=_kafka_ssl_context(settings) if protocol == "SASL_SSL" else None,
    )


def _uri_options(uri: str) -> set[str]:
    """Return the lower-cased names of the options a MongoDB URI sets (``w``, ``journal``...)."""
    query = uri.partition("?")[2]
    return {part.partition("=")[0].strip().lower() for part in query.split("&") if part}


def mongo_options(settings: Settings) -> dict[str, Any]:
    """Return the keyword arguments that add credentials, TLS and the write concern to the URI.

    Every write is acknowledged by a majority and journaled by default: the worker commits a
    Kafka offset, and the notifier sends an email, only after MongoDB acknowledged the write
    that records it, so an acknowledged write must survive a server crash or failover. A
    ``w=`` or ``journal=`` option in the URI wins over the settings.
    """
    options: dict[str, Any] = {}
    given = _uri_options(settings.mongo_uri)
    if "w" not in given:
        concern = settings.mongo_write_concern
        options["w"] = 1 if concern == "1" else concern
    if "journal" not in given:
        options["journal"] = settings.mongo_journal
    if settings.mongo_username:
        options["username"] = settings.mongo_username
        options["password"] = settings.mongo_password.get_secret_value()
    elif settings.mongo_password.get_secret_value():
        raise SettingsError(
            f"{ENV_PREFIX}MONGO_PASSWORD is set without {ENV_PREFIX}MONGO_USERNAME; set both"
        )
    if settings.mongo_auth_source:
        options["authSource"] = settings.mongo_auth_source
    if settings.mongo_tls is not None:
        options["tls"] = settings.mongo_tls
    for name, option in (
        ("mongo_tls_ca_file", "tlsCAFile"),
        ("mongo_tls_certificate_key_file", "tlsCertificateKeyFile"),
    ):
        path: Path | None = getattr(settings, name)
        if path is None:
            continue
        if not path.is_file():
            raise SettingsError(f"{ENV_PREFIX}{name.upper()}: no file at {path}")
        options[option] = str(path)
    return options
