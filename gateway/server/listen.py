"""The listening socket, the number of workers and the open-file budget."""

from __future__ import annotations

import logging
import math
import os
import socket
from pathlib import Path

from gateway.config import Settings

log = logging.getLogger("gateway")

BACKLOG = 2048
# Descriptors a worker keeps for itself beside its Redis and upstream pools (logs, the event
# loop, the lock and pipes, the app's files).
_OWN_FILES = 64


class ListenError(RuntimeError):
    """The address cannot be listened on; the message is one line for the operator."""


def bind(host: str, port: int, *, reuse_port: bool = False, backlog: int = BACKLOG) -> socket.socket:
    """A TCP socket listening on ``host:port`` (port 0: any free port). With ``reuse_port`` it
    joins the other sockets this user bound to the same address with ``reuse_port``: the kernel
    spreads new connections evenly over them."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        raise ListenError(f"cannot listen on {host}:{port}: {reason}") from None
    return sock


def reserve_port(host: str, port: int) -> int:
    """Check that nothing listens on ``host:port`` (a socket bound without ``reuse_port`` fails
    when any other socket holds the address, with or without it), and the port to use (port 0:
    a free one). Workers then bind it with ``reuse_port``; another gateway started on the same
    port later fails here instead of sharing its connections."""
    with bind(host, port, backlog=1) as probe:
        return int(probe.getsockname()[1])


def available_cores(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The cores this process may run on: its CPU affinity (a cpuset narrows it), capped by a
    CPU quota (``docker run --cpus=2`` on a larger host: 2), rounded up."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    quota = cpu_quota(cgroup)
    return max(1, min(cores, math.ceil(quota))) if quota else cores


def cpu_quota(cgroup: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPU quota of this process's cgroup in cores (cgroup v2 ``cpu.max``, else v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), None without one."""
    try:
        if (cgroup / "cpu.max").exists():
            quota, _, period = (cgroup / "cpu.max").read_text().strip().partition(" ")
            return None if quota == "max" else int(quota) / int(period or "100000")
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def worker_count(settings: Settings) -> int:
    """``server.workers``, or one per available core."""
    return settings.server.workers or available_cores()


def open_file_limit() -> int | None:
    """Raise this process's soft limit on open files to its hard limit; the limit now in force
    (None where there is none to read)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not Unix
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return None if soft == resource.RLIM_INFINITY else int(soft)


def connection_limit(settings: Settings, open_files: int | None) -> int:
    """``server.max_connections``, lowered (with a warning) when the client connections at
    their hard cap, the Redis and upstream pools and the worker's own files would not fit in
    the open-file limit: a flood then meets the connection limit, never the descriptor limit."""
    wanted = settings.server.max_connections
    if open_files is None:
        return wanted
    pools = settings.redis.max_connections + 2 + sum(p.max_connections for p in settings.providers)
    room = open_files - pools - _OWN_FILES
    fits = max(1, room * 8 // 9 - 16)  # the hard cap is an eighth (at least 16) above the limit
    if wanted <= fits:
        return wanted
    log.warning(
        "server.max_connections %d does not fit in the open-file limit %d (with the Redis and "
        "upstream pools): %d per worker instead",
        wanted,
        open_files,
        fits,
    )
    return fits
