"""Time for the fakes' pauses, injected.

Every wait of a fake answer is a named sleep on the app's clock: the latency of a ``slow`` fault
(before the first part, between parts) and the endless wait of a hanging answer (``silence``,
``stall``), which ends only when the client goes away. The real clock sleeps; a test may swap in
a manual clock of its own (any object with this ``sleep``, e.g. the gateway's ``ManualClock``)
and then decide itself when each pause ends instead of racing it in real time, and see when an
answer has sent all it will send (its ``fake_hang`` sleep has started).
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

FIRST_PART = "fake_first_part"
"""The pause before the first part of an answer (before its headers for a JSON answer)."""
GAP = "fake_gap"
"""The pause before each further part of a streamed answer."""
HANG = "fake_hang"
"""The endless wait of an answer that sends nothing more (infinite seconds: never fire it)."""


class Clock(Protocol):
    """What the fakes need from time: a named sleep that a manual clock can hold and release."""

    async def sleep(self, seconds: float, *, name: str = "sleep") -> None: ...


class RealClock:
    """Sleeps on the running event loop."""

    async def sleep(self, seconds: float, *, name: str = "sleep") -> None:
        if math.isinf(seconds):
            await asyncio.get_running_loop().create_future()
        await asyncio.sleep(max(0.0, seconds))
