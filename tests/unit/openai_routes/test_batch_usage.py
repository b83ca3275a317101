"""A batch's output read for its usage, and batch prices."""

from __future__ import annotations

import msgspec
import pytest

from gateway.clock import ManualClock
from gateway.config import settings_from_mapping
from gateway.openai_routes.batch_usage import line_usage, public_model, summed
from gateway.openai_routes.objects import Record
from gateway.pricing import BATCH, PriceTable, Usage
from gateway.upstream import Router
from gateway.upstream.provider import build_upstreams


def line(body: object, status: int = 200) -> bytes:
    return msgspec.json.encode(
        {"id": "r", "custom_id": "c", "response": {"status_code": status, "body": body}, "error": None}
    )


CHAT = line(
    {
        "model": "gpt-4o-mini-2024-07-18",
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    }
)
RESPONSES = line(
    {
        "model": "o4-mini",
        "usage": {
            "input_tokens": 20,
            "output_tokens": 9,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 5},
        },
    }
)
EMBEDDINGS = line({"model": "text-embedding-3-small", "usage": {"prompt_tokens": 6, "total_tokens": 6}})
FAILED = msgspec.json.encode({"id": "r", "custom_id": "c", "response": None, "error": {"code": "x"}})


def test_each_kind_of_output_line_gives_its_usage() -> None:
    assert line_usage(CHAT) == (
        "gpt-4o-mini-2024-07-18",
        Usage(input_tokens=10, cache_read_tokens=4, output_tokens=7, reasoning_tokens=2),
    )
    assert line_usage(RESPONSES) == ("o4-mini", Usage(input_tokens=20, output_tokens=9, reasoning_tokens=5))
    assert line_usage(EMBEDDINGS) == ("text-embedding-3-small", Usage(input_tokens=6))
    for nothing in (FAILED, line({"model": "m"}), line("text"), b"not json", b"[1, 2]"):
        assert line_usage(nothing) is None


def test_lines_are_summed_per_upstream_model() -> None:
    totals: dict[str, Usage] = {}
    summed([CHAT, b"", FAILED, CHAT], totals)
    summed([EMBEDDINGS], totals)
    assert totals == {
        "gpt-4o-mini-2024-07-18": Usage(
            input_tokens=20, cache_read_tokens=8, output_tokens=14, reasoning_tokens=4
        ),
        "text-embedding-3-small": Usage(input_tokens=6),
    }


def test_an_answers_model_is_the_batchs_public_model_on_its_provider() -> None:
    settings = settings_from_mapping(
        {
            "providers": [
                {"name": "a", "kind": "openai", "base_url": "http://a"},
                {"name": "b", "kind": "openai", "base_url": "http://b"},
            ],
            "models": [
                {"name": "mini", "provider": "b", "upstream_model": "other"},
                {"name": "mini", "provider": "a", "upstream_model": "gpt-4o-mini"},
                {"name": "embed", "provider": "a", "upstream_model": "text-embedding-3-small"},
            ],
        },
        source="<test>",
    )
    router = Router(settings, build_upstreams(settings, ManualClock()))
    record = Record(provider="a", upstream_id="u", models=("mini", "embed"))
    # A dated snapshot of a deployment's model is that deployment's public model.
    assert public_model(router, record, "gpt-4o-mini-2024-07-18") == ("mini", "gpt-4o-mini")
    assert public_model(router, record, "text-embedding-3-small") == ("embed", "text-embedding-3-small")
    assert public_model(router, record, "unknown") == ("mini", "gpt-4o-mini")


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-sonnet-4-5", "text-embedding-3-small"])
def test_batch_tokens_cost_half(model: str) -> None:
    prices = PriceTable()
    used = Usage(input_tokens=12_345, cache_read_tokens=1_000, output_tokens=6_789, reasoning_tokens=100)
    full = prices.cost(used, model)
    assert full > 0
    assert prices.batch_factor == 0.5
    assert prices.cost(msgspec.structs.replace(used, source=BATCH), model) == round(full * 0.5)
    assert prices.cost(msgspec.structs.replace(used, source="estimated"), model) == full
