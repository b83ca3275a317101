"""``[redis] tls_*``: checked with their key paths, and handed to every client a ``rediss`` url
builds (one server, its blocking twin, a cluster, a primary found through sentinels)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, Settings, settings_from_mapping
from gateway.redis.connection import ClusterClient, blocking_client, connect, tls_options

KEY = {"name": "k", "key": "sk-test-key-123456"}


def settings(**redis: Any) -> Settings:
    return settings_from_mapping({"redis": redis, "auth": {"keys": [KEY]}}, source="t.toml", env={})


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "settings test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "client.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def test_bad_tls_settings_are_named_by_their_key(tmp_path: Path, ca_file: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("no certificate here")
    cases: list[tuple[dict[str, Any], str, str]] = [
        (
            {"url": "rediss://h:6380/0", "tls_ca_file": str(tmp_path / "nope.pem")},
            "redis.tls_ca_file",
            "is not a readable file",
        ),
        (
            {"url": "rediss://h:6380/0", "tls_ca_file": str(junk)},
            "redis.tls_ca_file",
            "holds no PEM certificate",
        ),
        ({"url": "rediss://h:6380/0", "tls_cert_file": str(ca_file)}, "redis.tls_key_file", "needs both"),
        ({"url": "rediss://h:6380/0", "tls_key_file": str(ca_file)}, "redis.tls_cert_file", "needs both"),
        (
            {"url": "rediss://h:6380/0", "tls_cert_file": str(junk), "tls_key_file": str(junk)},
            "redis.tls_cert_file",
            "are not a PEM certificate and its key",
        ),
    ]
    # Without TLS they are not used, so not checked (a url from the environment decides).
    assert settings(url="redis://h:6379/0", tls_ca_file=str(junk), tls_cert_file=str(junk)).redis.tls is False
    for redis, key, reason in cases:
        with pytest.raises(ConfigError) as info:
            settings(**redis)
        assert (info.value.key, reason in info.value.reason) == (key, True), (redis, info.value)


def test_tls_options_reach_every_client(ca_file: Path) -> None:
    client_cert = {"tls_cert_file": str(ca_file), "tls_key_file": str(ca_file.parent / "client.key")}
    one = settings(
        url="rediss://h:6380/0", tls_ca_file=str(ca_file), tls_check_hostname=False, **client_cert
    ).redis
    assert tls_options(one) == {
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": False,
        "ssl_ca_certs": str(ca_file),
        "ssl_certfile": client_cert["tls_cert_file"],
        "ssl_keyfile": client_cert["tls_key_file"],
    }
    assert tls_options(settings(url="redis://h:6379/0").redis) == {}
    assert tls_options(settings(url="rediss://h:6380/0").redis) == {
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
    }
    commands = connect(one)
    for client in (commands, blocking_client(commands)):
        kwargs = client.connection_pool.connection_kwargs
        assert (kwargs["ssl_ca_certs"], kwargs["ssl_check_hostname"]) == (str(ca_file), False)
        assert client.connection_pool.connection_class.__name__ == "SSLConnection"
    cluster = connect(settings(url="rediss+cluster://a:7000,b:7001", tls_ca_file=str(ca_file)).redis)
    assert isinstance(cluster, ClusterClient)
    node_kwargs = (
        cluster.get_nodes()[0].connection_kwargs if cluster.get_nodes() else cluster.connection_kwargs
    )
    assert node_kwargs["ssl_ca_certs"] == str(ca_file)
    sentinel = connect(
        settings(
            url="rediss://:pw@/0",
            mode="sentinel",
            sentinels=["s:26379"],
            service_name="gw",
            tls_ca_file=str(ca_file),
        ).redis
    )
    assert sentinel.connection_pool.connection_kwargs["ssl_ca_certs"] == str(ca_file)
