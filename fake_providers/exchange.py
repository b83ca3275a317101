"""Per-request facts the renderers and fault plans share."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(slots=True, kw_only=True)
class Exchange:
    request_id: str
    model: str
    api_key: str | None = None
    input_tokens: int = 0  # the estimate for this request, once parsed
    context_window: int | None = None  # from the catalogue, when the model is in it
    started: float = field(default_factory=time.monotonic)

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)
