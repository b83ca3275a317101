"""Usage of one request: read it from the provider's answer, and from a relayed stream.

No prompt or completion content is ever kept: only counts, names and timings.
"""

from __future__ import annotations

import msgspec

from gateway.pricing import Usage


class _PromptDetails(msgspec.Struct):
    cached_tokens: int | None = None
    cache_creation_tokens: int | None = None
    cache_write_tokens: int | None = None  # the name the Anthropic translation uses


class _CompletionDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class _ChatUsage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None


class _WithUsage(msgspec.Struct):
    usage: _ChatUsage | None = None


_DECODER = msgspec.json.Decoder(_WithUsage)
_USAGE_MARK = b'"usage":{'


class UsageEvent(msgspec.Struct, omit_defaults=True):
    """One request, as written to the usage stream (and summed into the rollups)."""

    ts: float
    request_id: str
    kid: str
    endpoint: str
    model: str
    status: int
    team_id: str | None = None
    upstream_model: str | None = None
    provider: str | None = None
    stream: bool = False
    error_type: str | None = None
    attempts: int = 0
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    usage_source: str = "estimated"
    cost_nusd: int = 0
    price_version: str = ""
    ttft_ms: float | None = None
    duration_ms: float = 0.0
    overhead_ms: float = 0.0


def _from_chat(u: _ChatUsage) -> Usage:
    pd, cd = u.prompt_tokens_details, u.completion_tokens_details
    return Usage(
        input_tokens=u.prompt_tokens,
        cache_read_tokens=(pd.cached_tokens or 0) if pd else 0,
        cache_write_tokens=(pd.cache_creation_tokens or pd.cache_write_tokens or 0) if pd else 0,
        output_tokens=u.completion_tokens,
        reasoning_tokens=(cd.reasoning_tokens or 0) if cd else 0,
    )


def usage_from_body(body: bytes) -> Usage | None:
    """The ``usage`` of a Chat Completions JSON answer (other fields are skipped, not built)."""
    try:
        found = _DECODER.decode(body).usage
    except msgspec.DecodeError:
        return None
    return None if found is None else _from_chat(found)


class _InputDetails(msgspec.Struct):
    cached_tokens: int | None = None


class _OutputDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class _ResponsesUsage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    input_tokens_details: _InputDetails | None = None
    output_tokens_details: _OutputDetails | None = None


def usage_from_responses(usage: object) -> Usage | None:
    """A Responses API ``usage`` object (the final response's, streamed or not) as a Usage."""
    if usage is None:
        return None
    try:
        u = msgspec.convert(usage, _ResponsesUsage)
    except msgspec.ValidationError:
        return None
    inp, out = u.input_tokens_details, u.output_tokens_details
    return Usage(
        input_tokens=u.input_tokens,
        cache_read_tokens=(inp.cached_tokens or 0) if inp else 0,
        output_tokens=u.output_tokens,
        reasoning_tokens=(out.reasoning_tokens or 0) if out else 0,
    )


def usage_from_dict(usage: object) -> Usage | None:
    try:
        return _from_chat(msgspec.convert(usage, _ChatUsage))
    except msgspec.ValidationError:
        return None


class StreamUsageTap:
    """Sees a Chat Completions SSE byte stream go by; keeps the usage; can hide the usage chunk.

    Only whole events are passed on (a partial event waits for its end, which the client could
    not have used anyway). Events are looked at only when the cheap substring ``"usage":{``
    occurs — inside a JSON string that text would be escaped, so it marks a real usage object.
    With ``strip`` the usage-only chunk (``choices: []``) the gateway asked for is dropped.
    """

    __slots__ = ("_held", "_strip", "model", "usage")

    def __init__(self, *, strip: bool) -> None:
        self._strip = strip
        self._held = b""
        self.usage: Usage | None = None
        self.model: str | None = None  # the upstream's model name, from the usage chunk

    def feed(self, chunk: bytes) -> bytes:
        data = self._held + chunk if self._held else chunk
        lf, crlf = data.rfind(b"\n\n"), data.rfind(b"\r\n\r\n")
        cut = max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)
        if cut == 0:
            self._held = data
            return b""
        ready, self._held = data[:cut], data[cut:]
        if _USAGE_MARK not in ready:
            return ready
        return self._take(ready)

    def flush(self) -> bytes:
        out, self._held = self._held, b""
        return out

    def _take(self, ready: bytes) -> bytes:
        """``ready`` with its usage event(s) read, and dropped when stripped; the bytes around
        them are passed on as they came (a stream carries one usage chunk: it alone is parsed)."""
        out: list[bytes] = []
        pos = 0
        while (mark := ready.find(_USAGE_MARK, pos)) >= 0:
            start = _event_start(ready, pos, mark)
            end = _event_end(ready, mark)
            out.append(ready[pos:start])
            if self._keep(ready[start:end]):
                out.append(ready[start:end])
            pos = end
        out.append(ready[pos:])
        return b"".join(out)

    def _keep(self, event: bytes) -> bool:
        """Read the usage of one event; False when it is the usage-only chunk to hide."""
        lines = event.replace(b"\r\n", b"\n").split(b"\n")
        data = b"".join(line[5:].lstrip() for line in lines if line.startswith(b"data:"))
        try:
            payload = msgspec.json.decode(data)
        except msgspec.DecodeError:
            return True
        if not isinstance(payload, dict):
            return True
        found = usage_from_dict(payload.get("usage"))
        if found is not None:
            self.usage = found
            model = payload.get("model")
            self.model = model if isinstance(model, str) else None
        return not (self._strip and payload.get("choices") == [])


def _event_start(data: bytes, pos: int, at: int) -> int:
    """Where the event around ``at`` starts: after the last blank line between ``pos`` and it."""
    lf, crlf = data.rfind(b"\n\n", pos, at), data.rfind(b"\r\n\r\n", pos, at)
    return max(lf + 2 if lf >= 0 else pos, crlf + 4 if crlf >= 0 else pos)


def _event_end(data: bytes, at: int) -> int:
    """Where the event around ``at`` ends, its blank line included (``data`` holds whole
    events, so one ends after ``at``)."""
    ends = [i + n for i, n in ((data.find(b"\n\n", at), 2), (data.find(b"\r\n\r\n", at), 4)) if i >= 0]
    return min(ends) if ends else len(data)
