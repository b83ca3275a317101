"""`fake-providers --host 127.0.0.1 --port 9000 [--seed N]`: run the fake providers with uvicorn."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from fake_providers.app import create_app
from fake_providers.connection import CONTROLLED_HTTP_PROTOCOL
from fake_providers.options import FakeOptions


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fake-providers", description="Fake LLM providers (OpenAI-compatible, and more) for tests."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9000, help="port to listen on (default 9000)")
    parser.add_argument("--seed", type=int, default=None, help="make ids and timestamps deterministic")
    parser.add_argument("--require-auth", action="store_true", help="OpenAI routes require a bearer key")
    parser.add_argument(
        "--responses-done-marker", action="store_true", help="end Responses streams with data: [DONE]"
    )
    parser.add_argument("--journal-limit", type=int, default=10000, help="requests kept in the journal")
    parser.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    options = FakeOptions(
        seed=args.seed,
        require_auth=args.require_auth,
        responses_done_marker=args.responses_done_marker,
        journal_limit=args.journal_limit,
    )
    uvicorn.run(
        create_app(options),
        host=args.host,
        port=args.port,
        http=CONTROLLED_HTTP_PROTOCOL,
        log_level=args.log_level,
    )
