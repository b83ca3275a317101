"""Sending a planned answer over ASGI: status, headers, body parts, pauses, and how it ends.

Every fake answer, good or faulty, is a `ReplyPlan` run by `PlannedReply`. The plan says what to
send; the executor also watches for the client going away, so an answer that hangs (silence, a
stalled stream) ends as soon as the client disconnects and leaves no task behind. Pauses are
named sleeps on the app's clock (`fake_providers.clock`), so a test can hold and release them.
"""

from __future__ import annotations

import asyncio
import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from litestar.types import Receive, Scope, Send

from fake_providers.clock import FIRST_PART, GAP, HANG, Clock, RealClock
from fake_providers.connection import connection_control


class Ending(enum.Enum):
    COMPLETE = "complete"  # the body ends normally
    HANG = "hang"  # nothing more is sent until the client goes away
    CLOSE = "close"  # the connection is closed mid-body (the client sees a truncated message)


class ConnectionFaultUnavailable(RuntimeError):
    """Raised when a plan needs the connection-control extension and the server does not offer it.

    The server then does what it does for a crashing app: a 500 before the headers, or a dropped
    connection after them; the closest plain ASGI gets to a reset or a cut.
    """


@dataclass(frozen=True, slots=True)
class ReplyPlan:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    parts: tuple[bytes, ...] = ()
    ending: Ending = Ending.COMPLETE
    first_delay: float = 0.0  # seconds before the first part (before the headers when delay_headers)
    gap: float = 0.0  # seconds between parts
    delay_headers: bool = False
    reset: bool = False  # reset the connection before any header

    def with_headers(self, overrides: dict[str, str]) -> ReplyPlan:
        """Replace (case-insensitively) or add headers."""
        if not overrides:
            return self
        lowered = {name.lower(): (name, value) for name, value in overrides.items()}
        kept = tuple((name, value) for name, value in self.headers if name.lower() not in lowered)
        return replace(self, headers=kept + tuple(lowered.values()))


@dataclass(slots=True)
class ReplyTracker:
    """The app's answers in flight: how many are still being sent (so tests can see hanging
    answers end), and the clock their pauses wait on (swappable while the app runs)."""

    active: int = 0
    clock: Clock = field(default_factory=RealClock)


def _content_length(plan: ReplyPlan) -> tuple[tuple[str, str], ...]:
    names = {name.lower() for name, _ in plan.headers}
    if "content-length" in names or len(plan.parts) != 1 or plan.ending is not Ending.COMPLETE:
        return ()
    return (("content-length", str(len(plan.parts[0]))),)


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _forever() -> None:
    await asyncio.get_running_loop().create_future()


class PlannedReply:
    """An ASGI app that sends one `ReplyPlan`."""

    def __init__(self, plan: ReplyPlan, tracker: ReplyTracker | None = None) -> None:
        self.plan = plan
        self._tracker = tracker
        self._clock: Clock = tracker.clock if tracker is not None else RealClock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._tracker is not None:
            self._tracker.active += 1
        try:
            await self._run(scope, receive, send)
        finally:
            if self._tracker is not None:
                self._tracker.active -= 1

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> None:
        sender = asyncio.ensure_future(self._send_plan(scope, send))
        watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await asyncio.wait((sender, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sender.cancel()
            watcher.cancel()
            await asyncio.gather(sender, watcher, return_exceptions=True)
        error = None if sender.cancelled() else sender.exception()
        if error is not None:
            raise error

    async def _send_plan(self, scope: Scope, send: Send) -> None:
        plan = self.plan
        control = connection_control(scope)  # type: ignore[arg-type]
        if plan.reset:
            if control is None:
                raise ConnectionFaultUnavailable("connection reset needs the connection-control extension")
            control.reset()
            await _forever()
        if plan.delay_headers and plan.first_delay:
            await self._clock.sleep(plan.first_delay, name=FIRST_PART)
        await send(
            {
                "type": "http.response.start",
                "status": plan.status,
                "headers": [
                    (name.encode("latin-1"), value.encode("latin-1"))
                    for name, value in (*plan.headers, *_content_length(plan))
                ],
            }
        )
        await self._send_parts(send, plan.parts)
        if plan.ending is Ending.COMPLETE:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if plan.ending is Ending.CLOSE:
            if control is None:
                raise ConnectionFaultUnavailable("closing mid-body needs the connection-control extension")
            control.close()
            await _forever()
        # Ending.HANG: nothing more, until the client goes away (the watcher then cancels this).
        await self._clock.sleep(math.inf, name=HANG)

    async def _send_parts(self, send: Send, parts: Iterable[bytes]) -> None:
        plan = self.plan
        for index, part in enumerate(parts):
            pause = (0.0 if plan.delay_headers else plan.first_delay) if index == 0 else plan.gap
            if pause:
                await self._clock.sleep(pause, name=FIRST_PART if index == 0 else GAP)
            await send({"type": "http.response.body", "body": part, "more_body": True})
