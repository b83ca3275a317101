"""``rediss://``: the gateway's Redis traffic over TLS, with the CA from ``[redis] tls_ca_file``.

The redis-server the project ships is built without TLS, so the server side is a TLS-terminating
proxy (asyncio, a throwaway CA and server certificate) in front of a private redis-server: the
gateway's connections are TLS exactly as with a TLS-enabled Redis. A request is admitted through
it (its key's RPM counted in Redis: the second request in the minute is refused), and a CA that
did not sign the server's certificate stops the gateway at startup with an error that says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fake_providers.testing import FakeProviders
from gateway.app import create_app
from gateway.clock import ManualClock
from gateway.config import settings_from_mapping
from gateway.redis.migrate import version_key
from gateway.testing import base_config, poll_until, redis_server, serve_gateway


# -- certificates ----------------------------------------------------------------------------
def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(directory: Path, label: str) -> tuple[Path, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{label} test CA"))
        .issuer_name(_name(f"{label} test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{label}-ca.pem"
    path.write_bytes(_pem(cert))
    return path, cert, key


def server_context(
    directory: Path, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> ssl.SSLContext:
    """A server context whose certificate for 127.0.0.1 and localhost ``ca`` signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("redis behind TLS"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "server.pem").write_bytes(_pem(cert))
    (directory / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "server.pem", directory / "server.key")
    return context


# -- the TLS end -----------------------------------------------------------------------------
class TlsProxy:
    """Accepts TLS on a free loopback port and relays each connection's bytes to a plain TCP
    port (a redis-server), in a thread with its own event loop. ``handshakes`` counts the TLS
    connections accepted, ``refused`` those whose handshake failed."""

    def __init__(self, target_port: int, context: ssl.SSLContext) -> None:
        self._target = target_port
        self._context = context
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tls-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self.port = 0
        self.handshakes = 0

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        await asyncio.gather(self._relay(reader, up_writer), self._relay(up_reader, writer))

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0, ssl=self._context)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    def __enter__(self) -> TlsProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@contextmanager
def redis_behind_tls(directory: Path) -> Iterator[tuple[redis.Redis, TlsProxy, Path]]:
    """A private redis-server (a plain client on it), the TLS proxy in front of it, and the CA
    file that verifies the proxy's certificate."""
    ca_path, ca, ca_key = make_ca(directory, "right")
    with redis_server() as server, TlsProxy(server.port, server_context(directory, ca, ca_key)) as proxy:
        plain = redis.Redis.from_url(server.url)
        try:
            yield plain, proxy, ca_path
        finally:
            plain.close()


def _config(fake: FakeProviders, proxy: TlsProxy, ca_file: Path) -> dict[str, Any]:
    config = base_config(fake, f"rediss://127.0.0.1:{proxy.port}/0")
    config["redis"]["tls_ca_file"] = str(ca_file)
    config["auth"]["keys"][0]["limits"] = {"rpm": 1}
    return config


# -- tests -----------------------------------------------------------------------------------
def test_a_request_is_admitted_through_rediss(tmp_path: Path) -> None:
    with redis_behind_tls(tmp_path) as (plain, proxy, ca_file), FakeProviders() as fake:
        config = _config(fake, proxy, ca_file)
        prefix = config["redis"]["key_prefix"]
        with serve_gateway(config, clock=ManualClock()) as gw:
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "over TLS"}]}
            with gw.http() as client:
                first = client.post("/v1/chat/completions", json=body)
                assert first.status_code == 200, first.text
                # The key's RPM is counted in Redis, through the proxy: the next one is refused.
                second = client.post("/v1/chat/completions", json=body)
                assert second.status_code == 429, second.text
                assert client.get("/readyz").status_code == 200
        assert proxy.handshakes > 0
        # What went through TLS is in the server behind it.
        assert plain.get(version_key(prefix)) is not None
        assert poll_until(lambda: plain.xlen(prefix + "usage") >= 1, what="the usage event")
        assert len(fake.requests(path="/openai/v1/chat/completions")) == 1


async def _startup(app: Any) -> dict[str, Any]:
    """The ASGI lifespan's answer to ``lifespan.startup`` (then its shutdown, if it started)."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    answer = await asyncio.wait_for(outbox.get(), 30)
    if answer["type"] == "lifespan.startup.complete":
        await inbox.put({"type": "lifespan.shutdown"})
    # A failed startup is also raised to the server (which logs it and exits).
    with contextlib.suppress(Exception):
        await asyncio.wait_for(task, 30)
    return answer


async def test_a_ca_that_did_not_sign_the_certificate_stops_the_startup(tmp_path: Path) -> None:
    wrong_ca, _, _ = make_ca(tmp_path, "wrong")
    with redis_behind_tls(tmp_path) as (plain, proxy, _), FakeProviders() as fake:
        settings = settings_from_mapping(_config(fake, proxy, wrong_ca), source="<test>")
        answer = await _startup(create_app(settings, clock=ManualClock()))
        assert answer["type"] == "lifespan.startup.failed"
        assert "the TLS connection was refused" in answer["message"]
        assert "certificate verify failed" in answer["message"]
        assert "redis.tls_ca_file" in answer["message"]
        # Nothing was written: the server behind the proxy saw no command.
        assert plain.dbsize() == 0


def test_without_tls_the_proxy_is_no_redis(tmp_path: Path) -> None:
    """The proxy speaks only TLS: a plain client gets no Redis answer from it, so the test above
    proves the gateway's connections were TLS."""
    with redis_behind_tls(tmp_path) as (plain, proxy, _):
        assert plain.ping()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as raw:
            raw.sendall(b"PING\r\n")
            answer = raw.recv(1024)
        assert not answer.startswith(b"+PONG")
