"""A worker's memory: `gateway serve` runs on the C allocator (unless PYTHONMALLOC is set), and
a worker collects and returns memory once per quiet spell, never under load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.server.memory import IdleTrim, use_system_allocator

ROOT = Path(__file__).resolve().parents[3]


def test_idle_trim_runs_when_quiet_a_few_times_never_under_load() -> None:
    trim = IdleTrim(idle_seconds=2.0, repeat_seconds=5.0, repeats=3)
    assert not trim.tick(0, 0.0)  # never busy: nothing to give back
    assert not trim.tick(0, 10.0)
    assert not trim.tick(3, 11.0)  # busy
    assert not trim.tick(0, 11.5)  # quiet from here
    assert not trim.tick(0, 13.0)  # 1.5 s: not yet
    assert not trim.tick(2, 13.2)  # busy again: the quiet spell starts over
    assert not trim.tick(0, 13.5)
    assert trim.tick(0, 15.6)  # 2.1 s quiet
    assert not trim.tick(0, 18.0)
    assert trim.tick(0, 20.6)  # again 5 s later
    assert trim.tick(0, 25.6)  # and a third time
    assert not trim.tick(0, 31.0)  # three per quiet spell
    assert not trim.tick(0, 300.0)
    assert trim.trims == 3
    assert not trim.tick(1, 301.0)  # busy: a new spell may trim again
    assert not trim.tick(0, 301.5)
    assert trim.tick(0, 304.0)
    assert trim.trims == 4


_PROBE = """
import os, sys
from gateway.server.memory import use_system_allocator
use_system_allocator()
print(os.getpid(), os.environ.get("PYTHONMALLOC"), sys.argv[1:])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the C allocator is chosen on Linux")
def test_serve_starts_itself_again_on_the_c_allocator_once(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(_PROBE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONMALLOC"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, str(script), "a", "b"], env=env, stdout=subprocess.PIPE, text=True
    )
    out, _ = proc.communicate(timeout=60)
    pid, allocator, args = out.split(" ", 2)
    assert int(pid) == proc.pid  # the same process, started again
    assert allocator == "malloc"
    assert args.strip() == "['a', 'b']"
    # An operator's own choice is kept.
    env["PYTHONMALLOC"] = "pymalloc"
    out = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.split(" ")[1] == "pymalloc"


def test_nothing_happens_when_the_allocator_is_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONMALLOC", "pymalloc")
    use_system_allocator()  # returns: no exec
