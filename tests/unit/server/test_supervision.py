"""What the supervisor decides without processes: the restart backoff, how an exit reads, and
how many workers ``gateway serve`` starts by default."""

from __future__ import annotations

import os
from pathlib import Path

from gateway.server.listen import available_cores, cpu_quota
from gateway.server.supervisor import describe_exit, restart_delay


def test_restarts_back_off_from_at_once_to_thirty_seconds() -> None:
    assert [restart_delay(n) for n in range(1, 9)] == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(-9) == "was killed by SIGKILL"


def test_the_default_worker_count_follows_affinity_capped_by_a_cpu_quota(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    assert available_cores(tmp_path) == affinity  # no cgroup files: the affinity
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpu_quota(tmp_path) is None and available_cores(tmp_path) == affinity
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a core: one worker
    assert cpu_quota(tmp_path) == 0.5 and available_cores(tmp_path) == 1
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu_quota(tmp_path) is None
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("150000\n")  # cgroup v1, 1.5 cores
    assert cpu_quota(tmp_path) == 1.5 and available_cores(tmp_path) == min(affinity, 2)
