"""``python -m fake_providers.mcp [--port N]``: the fake MCP server on its own (``/mcp``)."""

from __future__ import annotations

import argparse

import uvicorn

from fake_providers.mcp.server import create_mcp_app

parser = argparse.ArgumentParser(prog="fake_providers.mcp")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=9200)
options = parser.parse_args()
uvicorn.run(create_mcp_app(), host=options.host, port=options.port)
