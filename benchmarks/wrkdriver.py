"""Driving ``wrk`` when it is installed: a Lua script for the POST and a JSON line from ``done``.

wrk's histogram includes every response, whatever its status; the script counts streaming
bodies that lack ``data: [DONE]`` or carry an error event, summed over wrk's threads.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

_MARK = "BENCH_RESULT "

# Only for streams: a Lua ``response`` callback makes wrk hand every body to Lua, which costs.
_STREAM_CHECK = r"""
function response(status, headers, body)
  if status == 200 then
    if not string.find(body, "data: [DONE]", 1, true) or string.find(body, '"error"', 1, true) then
      bad = bad + 1
    end
  end
end
"""

_LUA = r"""
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}

local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
end

{response}
function done(summary, latency, requests)
  local bad_total = 0
  for _, t in ipairs(threads) do
    bad_total = bad_total + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    '{mark}{{"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%.1f,"p90_us":%.1f,' ..
    '"p99_us":%.1f,"max_us":%.1f,"mean_us":%.1f,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"bad_body":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout, bad_total))
end
"""


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str:
    path = wrk_path()
    if path is None:
        return "wrk (missing)"
    # `wrk -v` prints its banner and exits non-zero.
    out = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=5, check=False)
    match = re.search(r"wrk\s+(\S+)", out.stdout + out.stderr)
    return f"wrk {match.group(1)}" if match else "wrk"


def write_script(path: Path, *, body: str, headers: list[tuple[str, str]], stream: bool) -> None:
    if "]==]" in body:
        raise ValueError("request body cannot be embedded in a Lua long string")
    header_lines = "\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers)
    path.write_text(
        _LUA.format(body=body, headers=header_lines, response=_STREAM_CHECK if stream else "", mark=_MARK)
    )


def wrk_command(
    url: str, script: Path, *, connections: int, seconds: float, threads: int, timeout: float
) -> list[str]:
    path = wrk_path()
    if path is None:
        raise RuntimeError("wrk is not installed")
    return [
        path,
        f"-t{max(1, min(threads, connections))}",
        f"-c{connections}",
        f"-d{max(1, math.ceil(seconds))}s",
        f"--timeout={max(1, math.ceil(timeout))}s",
        "-s",
        str(script),
        url,
    ]


def parse_output(stdout: str) -> dict[str, Any]:
    for line in stdout.splitlines():
        if line.startswith(_MARK):
            parsed: dict[str, Any] = json.loads(line[len(_MARK) :])
            return parsed
    raise RuntimeError(f"wrk printed no result line:\n{stdout[-2000:]}")
