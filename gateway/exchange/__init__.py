"""One request's life, the same for every endpoint, and the client-side seam it talks through.

* :mod:`.channel`: :class:`ClientChannel`, what the HTTP layer provides (read the body, send
  JSON, stream chunks, notice a disconnect);
* :mod:`.lifecycle`: :class:`Exchange`, id, authentication, admission, plan, failover, commit,
  relay, settlement and metrics for one request;
* :mod:`.memory`: :class:`MemoryChannel`, a channel in memory (tests);
* :mod:`.spans`: the trace span of one upstream attempt.
"""

from gateway.exchange.channel import ClientChannel, ClientDisconnected, new_request_id, send_error
from gateway.exchange.lifecycle import Exchange, JsonAnswer, Outcome, refusal_type
from gateway.exchange.memory import MemoryChannel

__all__ = [
    "ClientChannel",
    "ClientDisconnected",
    "Exchange",
    "JsonAnswer",
    "MemoryChannel",
    "Outcome",
    "new_request_id",
    "refusal_type",
    "send_error",
]
