"""Settings produce the right Kafka and MongoDB client options (no live TLS server needed)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import faust
import pytest

from bootstrap import mongo_client
from client_options import faust_credentials, kafka_options, mongo_options
from settings import SECRET_SETTINGS, Settings, SettingsError

PASSWORD = "kafka-secret-password"


def settings(**values: Any) -> Settings:
    return Settings(**values)


@pytest.fixture(scope="module")
def client_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and its key, standing in for a CA and a client identity."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=loyalty-test", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_plaintext_adds_nothing() -> None:
    plain = settings()
    assert kafka_options(plain) == {}
    assert faust_credentials(plain) is None
    assert mongo_options(plain) == {"w": "majority", "journal": True}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_over_tls(mechanism: str, client_cert: tuple[Path, Path]) -> None:
    cert, _ = client_cert
    chosen = settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="loyalty",
        kafka_sasl_password=PASSWORD,
        kafka_ssl_cafile=cert,
    )
    options = kafka_options(chosen)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == mechanism
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("loyalty", PASSWORD)
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.get_ca_certs()  # the CA file was loaded
    credentials = faust_credentials(chosen)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == mechanism
    assert (credentials.username, credentials.password) == ("loyalty", PASSWORD)


def test_sasl_without_tls_and_ssl_without_sasl(client_cert: tuple[Path, Path]) -> None:
    cert, key = client_cert
    sasl = settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="u",
        kafka_sasl_password="p",
    )
    assert "ssl_context" not in kafka_options(sasl)
    assert kafka_options(sasl)["security_protocol"] == "SASL_PLAINTEXT"
    mutual = settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=cert,
        kafka_ssl_certfile=cert,
        kafka_ssl_keyfile=key,
    )
    options = kafka_options(mutual)
    assert options["security_protocol"] == "SSL"
    assert "sasl_mechanism" not in options
    assert isinstance(faust_credentials(mutual), faust.SSLCredentials)


def test_incomplete_kafka_security_is_refused_with_the_settings_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="KAFKA_SASL_USERNAME and LOYALTY_KAFKA_SASL_PASSWORD"):
        kafka_options(settings(kafka_security_protocol="SASL_SSL"))
    with pytest.raises(SettingsError, match="LOYALTY_KAFKA_SSL_CAFILE: no file"):
        kafka_options(
            settings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "missing.pem")
        )
    with pytest.raises(SettingsError, match="go together"):
        kafka_options(settings(kafka_security_protocol="SSL", kafka_ssl_certfile=__file__))


def test_mongo_credentials_and_tls(client_cert: tuple[Path, Path]) -> None:
    cert, _ = client_cert
    chosen = settings(
        mongo_uri="mongodb://db.example.internal:27017/?replicaSet=rs0",
        mongo_username="loyalty",
        mongo_password="mongo-secret",
        mongo_auth_source="admin",
        mongo_tls=True,
        mongo_tls_ca_file=cert,
    )
    assert mongo_options(chosen) == {
        "w": "majority",
        "journal": True,
        "username": "loyalty",
        "password": "mongo-secret",
        "authSource": "admin",
        "tls": True,
        "tlsCAFile": str(cert),
    }
    with pytest.raises(SettingsError, match="MONGO_USERNAME"):
        mongo_options(settings(mongo_password="x"))


async def test_writes_are_journaled_by_a_majority_unless_told_otherwise() -> None:
    single = settings(mongo_write_concern="1", mongo_journal=False)
    assert mongo_options(single) == {"w": 1, "journal": False}
    from_uri = settings(mongo_uri="mongodb://db.internal:27017/?replicaSet=rs0&W=2&journal=false")
    assert mongo_options(from_uri) == {}  # the URI's own write concern wins, in any case
    with_w = settings(mongo_uri="mongodb://db.internal:27017/?w=1")
    assert mongo_options(with_w) == {"journal": True}
    client = mongo_client(settings())
    try:  # the options reach the client every component builds (it connects lazily)
        assert client.write_concern.document == {"w": "majority", "j": True}
    finally:
        await client.close()


def test_secrets_are_masked_in_every_rendering() -> None:
    chosen = settings(
        kafka_sasl_password=PASSWORD,
        mongo_password="mongo-secret",
        api_token="api-secret-token",
        kafka_ssl_key_password="key-secret",
    )
    shown = f"{chosen!r} {chosen} {chosen.model_dump()} {chosen.model_dump_json()}"
    for secret in (PASSWORD, "mongo-secret", "api-secret-token", "key-secret"):
        assert secret not in shown
    assert {"kafka_sasl_password", "mongo_password", "api_token"} <= SECRET_SETTINGS
