"""``Usage.plus``: the one sum of two requests' tokens (a rescued stream's parts, a batch's lines)."""

from __future__ import annotations

from gateway.pricing import BATCH, Usage


def test_every_count_adds() -> None:
    a = Usage(input_tokens=10, cache_read_tokens=4, cache_write_tokens=2, output_tokens=7, reasoning_tokens=3)
    b = Usage(input_tokens=5, cache_read_tokens=1, cache_write_tokens=6, output_tokens=2, reasoning_tokens=1)
    assert a.plus(b) == Usage(
        input_tokens=15, cache_read_tokens=5, cache_write_tokens=8, output_tokens=9, reasoning_tokens=4
    )
    assert a.plus(b) == b.plus(a)


def test_nothing_to_add_is_the_usage_itself() -> None:
    usage = Usage(input_tokens=3, source=BATCH)
    assert usage.plus(None) is usage


def test_an_estimated_part_makes_the_sum_estimated() -> None:
    reported, estimated = Usage(output_tokens=1), Usage(output_tokens=2, source="estimated")
    assert reported.plus(estimated).source == "estimated"
    assert estimated.plus(reported).source == "estimated"
    assert reported.plus(reported).source == "reported"


def test_a_shared_source_is_kept_a_mixed_one_is_reported() -> None:
    batch = Usage(input_tokens=1, source=BATCH)
    assert batch.plus(batch) == Usage(input_tokens=2, source=BATCH)
    assert batch.plus(Usage(input_tokens=1)).source == "reported"
