"""What every part of the benchmark harness shares: paths, the request it sends, the budget."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = Path(__file__).resolve().parent / "configs"
MODEL = "bench-model"
PACED_MODEL = "bench-paced"  # the bench upstream paces its streams
CHAT_PATH = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "Say hello in a few words."}]

# The performance budget (issue 20), per worker on a 2-core machine: the report checks the
# default variant against it and says MISSED where it falls short.
BUDGET_CPU_MS = 0.20
BUDGET_RPS = 5000.0
BUDGET_STREAMS = 3500.0
BUDGET_RSS_MB = 80.0  # idle
BUDGET_RSS_LOAD_MB = 120.0  # under the load of the main cases (32 connections)
# Above this much CPU used by other processes during a window, the report says so.
NOISE_CORES = 0.10


class BenchError(Exception):
    """A failure worth one line (plus a log tail), not a traceback."""
