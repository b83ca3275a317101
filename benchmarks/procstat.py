"""What the kernel says about a process: CPU ticks, resident memory, children; and the machine."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of every thread of ``pid`` in clock ticks; None once the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state), so utime (field 14) is fields[11] and stime (15) fields[12].
    return int(fields[11]) + int(fields[12])


def busy_ticks() -> int:
    """Ticks all CPUs spent busy since boot: user, nice, system, irq, softirq, steal.

    Interrupt time counts because the kernel charges it to processes' own times as well (loopback
    traffic is processed in softirq context on behalf of the sender).
    """
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return user + nice + system + irq + softirq + steal


def cpu_ticks_many(pids: list[int]) -> dict[int, int | None]:
    return {pid: cpu_ticks(pid) for pid in pids}


def _status_kib(pid: int, field: bytes) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_bytes().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_kib(pid: int) -> int | None:
    """Resident set size now (VmRSS)."""
    return _status_kib(pid, b"VmRSS:")


def peak_rss_kib(pid: int) -> int | None:
    """The high-water mark of the resident set (VmHWM)."""
    return _status_kib(pid, b"VmHWM:")


def pss_kib(pid: int) -> int | None:
    """The proportional set size: resident pages, each shared one divided among its sharers."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return None


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (all of its threads), from /proc/<pid>/task/*/children."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
        except OSError:
            continue
        found.extend(int(part) for part in text.split())
    return found


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_count() -> int:
    try:
        out = subprocess.run(["nproc"], capture_output=True, text=True, timeout=5, check=True)
        return int(out.stdout.strip())
    except (OSError, ValueError, subprocess.SubprocessError):
        return len(os.sched_getaffinity(0))


def machine_summary() -> dict[str, str | int]:
    return {
        "nproc": cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "kernel": platform.release(),
    }
