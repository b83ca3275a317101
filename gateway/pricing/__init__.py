"""Model prices: a table shipped with the package (``prices.toml``), overridable in config.

Compiled once at start-up into nano-USD per token, so costing a request is a few
multiplications. Costs are integers in nano-USD (1e-9 USD) so counters never drift.

Tokens a provider reported for a batch (:class:`Usage` with ``source`` :data:`BATCH`) cost the
table's ``batch_factor`` of the listed prices: OpenAI and Anthropic bill their batch APIs at half
price, the shipped factor.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources

import msgspec

from gateway.config import Price


class Usage(msgspec.Struct, frozen=True):
    """Tokens of one request. ``input_tokens`` includes the cached ones (read and written)."""

    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    source: str = "reported"  # or "estimated", or BATCH (reported for a batch: batch prices)

    def plus(self, other: Usage | None) -> Usage:
        """The tokens of both (``self`` when ``other`` is None). The sum is ``estimated`` when
        either part is, of the parts' source when they share one, else ``reported``."""
        if other is None:
            return self
        if "estimated" in (self.source, other.source):
            source = "estimated"
        else:
            source = self.source if self.source == other.source else "reported"
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            source=source,
        )


BATCH = "batch"


class _Rates(msgspec.Struct, frozen=True):
    input: float
    cache_read: float
    cache_write: float
    output: float
    reasoning: float


def _rates(price: Price) -> _Rates:
    per = 1000.0  # USD per million tokens -> nano-USD per token
    return _Rates(
        input=price.input * per,
        cache_read=(price.cache_read if price.cache_read is not None else price.input) * per,
        cache_write=(price.cache_write if price.cache_write is not None else price.input) * per,
        output=price.output * per,
        reasoning=(price.reasoning if price.reasoning is not None else price.output) * per,
    )


class PriceTable:
    def __init__(self, overrides: Mapping[str, Price] | None = None) -> None:
        text = resources.files("gateway.pricing").joinpath("prices.toml").read_text(encoding="utf-8")
        data = tomllib.loads(text)
        self.version = str(data.get("version", "unknown"))
        self.batch_factor = float(data.get("batch_factor", 1.0))
        prices = {name: msgspec.convert(p, Price) for name, p in data.get("models", {}).items()}
        if overrides:
            prices.update(overrides)
            self.version += "+config"
        self._rates = {name: _rates(p) for name, p in prices.items()}

    def known(self, *models: str) -> bool:
        return any(m in self._rates for m in models)

    def _find(self, models: tuple[str, ...]) -> _Rates | None:
        for m in models:
            rates = self._rates.get(m)
            if rates is not None:
                return rates
        return None

    def cost(self, usage: Usage, *models: str) -> int:
        """Cost in nano-USD under the first of ``models`` with a price (0 when none has one)."""
        r = self._find(models)
        if r is None:
            return 0
        cached = usage.cache_read_tokens + usage.cache_write_tokens
        uncached = max(0, usage.input_tokens - cached)
        plain_out = max(0, usage.output_tokens - usage.reasoning_tokens)
        cost = (
            uncached * r.input
            + usage.cache_read_tokens * r.cache_read
            + usage.cache_write_tokens * r.cache_write
            + plain_out * r.output
            + usage.reasoning_tokens * r.reasoning
        )
        return round(cost * self.batch_factor if usage.source == BATCH else cost)

    def hold(self, input_tokens: int, output_tokens: int, *models: str) -> int:
        """Worst-case cost used for a budget hold: uncached input, output at the dearer rate."""
        r = self._find(models)
        if r is None:
            return 0
        return round(input_tokens * r.input + output_tokens * max(r.output, r.reasoning))
