"""The lock-free families expose what prometheus_client's own Counter, Gauge and Histogram do."""

from __future__ import annotations

import re
import time
from typing import Any

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from gateway.telemetry import series

BUCKETS = (1, 2.5, 4.0**10)
NEGATIVE_BUCKETS = (-10.0, 0.0, 10.0)
VALUES = (0, 1, 1.0000001, 2.5, 3, 4**10, 4**10 + 1, 7e9)


def _families(r: CollectorRegistry, lib: object) -> tuple[Any, ...]:
    """The same families in either library (their constructors differ in argument order)."""
    if lib is prometheus_client:
        return (
            prometheus_client.Counter("c", "A counter.", ["a", "b"], registry=r),
            prometheus_client.Counter("plain_c", "A counter without labels.", registry=r),
            prometheus_client.Gauge("g", "A gauge.", ["a"], registry=r),
            prometheus_client.Gauge("plain_g", "A gauge without labels.", registry=r),
            prometheus_client.Histogram("h", "A histogram.", ["a"], buckets=BUCKETS, registry=r),
            prometheus_client.Histogram("plain_h", "No labels.", buckets=(1, 2, 5), registry=r),
            prometheus_client.Histogram("neg_h", "Below zero.", ["a"], buckets=NEGATIVE_BUCKETS, registry=r),
        )
    return (
        series.Counter(r, "c", "A counter.", ("a", "b")),
        series.Counter(r, "plain_c", "A counter without labels.", ()),
        series.Gauge(r, "g", "A gauge.", ("a",)),
        series.Gauge(r, "plain_g", "A gauge without labels.", ()),
        series.Histogram(r, "h", "A histogram.", ("a",), BUCKETS),
        series.Histogram(r, "plain_h", "No labels.", (), (1, 2, 5)),
        series.Histogram(r, "neg_h", "Below zero.", ("a",), NEGATIVE_BUCKETS),
    )


def _update(families: tuple[Any, ...]) -> None:
    counter, plain_counter, gauge, plain_gauge, histogram, plain_histogram, negative = families
    counter.labels("x", "y").inc()
    counter.labels("x", "z").inc(2.5)
    counter.labels("x", "y").inc(3)
    counter.labels("never", "incremented")
    plain_counter.inc(4)
    gauge.labels("up").inc()
    gauge.labels("up").inc(2)
    gauge.labels("down").dec()
    gauge.labels("set").set(2)
    plain_gauge.set(1)
    for value in VALUES:
        histogram.labels("every").observe(value)
        plain_histogram.observe(value)
        negative.labels("every").observe(value - 11)
    histogram.labels("one").observe(2)
    histogram.labels("none")


def _masked(text: bytes) -> str:
    """The exposition with ``_created`` times replaced (they differ by microseconds)."""
    return re.sub(r"(_created(\{[^}]*\})?) \S+", r"\1 T", text.decode())


def test_the_text_is_what_prometheus_client_writes_for_its_own_metrics() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    _update(_families(theirs, prometheus_client))
    _update(_families(ours, series))
    text = _masked(generate_latest(ours))
    assert text == _masked(generate_latest(theirs))
    assert 'h_bucket{a="every",le="1.048576e+06"} 6.0' in text  # 4**10 is in its own bucket
    assert 'h_bucket{a="every",le="+Inf"} 8.0' in text
    assert 'neg_h_count{a="every"} 8.0' in text and "neg_h_sum" not in text


def test_created_times_are_when_a_series_was_bound() -> None:
    registry = CollectorRegistry()
    counter = series.Counter(registry, "c", "A counter.", ("a",))
    before = time.time()
    counter.labels("x")
    created = registry.get_sample_value("c_created", {"a": "x"})
    assert created is not None and before <= created <= time.time()


def test_created_series_follow_prometheus_clients_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_DISABLE_CREATED_SERIES", "True")
    registry = CollectorRegistry()
    series.Counter(registry, "c", "A counter.", ()).inc()
    series.Histogram(registry, "h", "A histogram.", (), (1,)).observe(1)
    text = generate_latest(registry).decode()
    assert "c_total 1.0" in text and 'h_bucket{le="1.0"} 1.0' in text
    assert "_created" not in text


def test_a_series_keeps_its_value_across_lookups() -> None:
    registry = CollectorRegistry()
    gauge = series.Gauge(registry, "g", "A gauge.", ("route",))
    gauge.labels("/a").inc()
    gauge.labels("/a").inc()
    gauge.labels("/a").dec()
    assert gauge.labels("/a") is gauge.labels("/a")
    assert gauge.labels("/a").get() == 1.0
    assert registry.get_sample_value("g", {"route": "/a"}) == 1.0


def test_misuse_is_refused_as_prometheus_client_refuses_it() -> None:
    registry = CollectorRegistry()
    counter = series.Counter(registry, "c", "A counter.", ("a", "b"))
    with pytest.raises(ValueError, match="non-negative"):
        counter.labels("x", "y").inc(-1)
    with pytest.raises(ValueError, match="takes the labels"):
        counter.labels("x")
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        series.Gauge(registry, "c_total", "The counter's sample name again.", ())
    with pytest.raises(ValueError, match="sorted"):
        series.Histogram(registry, "h", "A histogram.", (), (2, 1))
    assert registry.get_sample_value("c_total", {"a": "x", "b": "y"}) == 0.0
