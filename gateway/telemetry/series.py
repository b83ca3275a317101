"""Counters, gauges and histograms for one event loop, exposed through prometheus_client.

prometheus_client guards every value with a ``threading.Lock`` and finds a histogram's bucket by a
linear scan: what a process with threads needs. The gateway updates its metrics from its event loop
only (``/metrics`` is served on that loop too), so a series here is a plain object with float fields,
and a histogram finds its bucket with ``bisect``. A family registers itself in a
``CollectorRegistry`` like prometheus_client's own metrics, and ``collect()`` hands it the samples
those would give (names, label order, ``le`` strings, ``_created`` times), so ``generate_latest``
writes the same text.

A family's ``labels(...)`` binds one series (made on first use, then kept); a family without labels
has its one series from the start and is updated directly, as in prometheus_client.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import ClassVar, Generic, TypeVar, cast

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import INF, floatToGoString

# How prometheus_client spells a bucket bound in ``le`` (``1.048576e+06``, ``+Inf``).
go_float = cast(Callable[[float], str], floatToGoString)


def created_series() -> bool:
    """Whether ``_created`` samples are written (prometheus_client's switch, read the same way)."""
    return os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "False").lower() not in ("true", "1", "t")


class CounterSeries:
    """One labelled counter: a float that only goes up."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self.value += amount


class GaugeSeries:
    """One labelled gauge: a float set, raised or lowered."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = value

    def get(self) -> float:
        return self.value


class HistogramSeries:
    """One labelled histogram: the count per bucket (not cumulative) and the sum."""

    __slots__ = ("bounds", "counts", "created", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds  # the upper bounds, +Inf last
        self.counts = [0] * len(bounds)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        # The first bound at or above the amount: prometheus_client's ``amount <= bound``.
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.sum += amount


S = TypeVar("S", CounterSeries, GaugeSeries, HistogramSeries)


class Family(Generic[S]):
    """A metric family: its name, help and label names, and the series bound so far."""

    kind: ClassVar[str]

    def __init__(
        self, registry: CollectorRegistry | None, name: str, documentation: str, labelnames: Sequence[str]
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._series: dict[tuple[str, ...], S] = {}
        self._created = created_series()
        if not self.labelnames:
            self.labels()
        if registry is not None:
            registry.register(self)

    def _new(self) -> S:
        raise NotImplementedError

    def labels(self, *values: str) -> S:
        """The series of these label values (in ``labelnames`` order), made on first use."""
        series = self._series.get(values)
        if series is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes the labels {self.labelnames}, got {values}")
            series = self._series[values] = self._new()
        return series

    def describe(self) -> list[Metric]:
        return [Metric(self.name, self.documentation, self.kind)]

    def collect(self) -> list[Metric]:
        family = Metric(self.name, self.documentation, self.kind)
        add = family.samples.append
        names = self.labelnames
        for values, series in self._series.items():
            self._samples(add, dict(zip(names, values, strict=True)), series)
        return [family]

    def _samples(self, add: Callable[[Sample], None], labels: dict[str, str], series: S) -> None:
        raise NotImplementedError


class Counter(Family[CounterSeries]):
    kind = "counter"

    def _new(self) -> CounterSeries:
        return CounterSeries()

    def inc(self, amount: float = 1.0) -> None:
        self.labels().inc(amount)

    def _samples(self, add: Callable[[Sample], None], labels: dict[str, str], series: CounterSeries) -> None:
        add(Sample(self.name + "_total", labels, series.value))
        if self._created:
            add(Sample(self.name + "_created", labels, series.created))


class Gauge(Family[GaugeSeries]):
    kind = "gauge"

    def _new(self) -> GaugeSeries:
        return GaugeSeries()

    def set(self, value: float) -> None:
        self.labels().set(value)

    def _samples(self, add: Callable[[Sample], None], labels: dict[str, str], series: GaugeSeries) -> None:
        add(Sample(self.name, labels, series.value))


class Histogram(Family[HistogramSeries]):
    kind = "histogram"

    def __init__(
        self,
        registry: CollectorRegistry | None,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
    ) -> None:
        bounds = [float(b) for b in buckets]
        if bounds != sorted(bounds):
            raise ValueError(f"{name}: buckets not in sorted order")
        if not bounds or bounds[-1] != INF:
            bounds.append(INF)
        self.bounds = tuple(bounds)
        self._les = tuple(go_float(b) for b in bounds)
        super().__init__(registry, name, documentation, labelnames)

    def _new(self) -> HistogramSeries:
        return HistogramSeries(self.bounds)

    def observe(self, amount: float) -> None:
        self.labels().observe(amount)

    def _samples(
        self, add: Callable[[Sample], None], labels: dict[str, str], series: HistogramSeries
    ) -> None:
        name = self.name
        total = 0.0
        for le, count in zip(self._les, series.counts, strict=True):
            total += count
            add(Sample(name + "_bucket", {**labels, "le": le}, total))
        add(Sample(name + "_count", labels, total))
        if self.bounds[0] >= 0:
            add(Sample(name + "_sum", labels, series.sum))
        if self._created:
            add(Sample(name + "_created", labels, series.created))
