"""What the simple routes read of a request: the model (which routes it), ``stream``, and the
body to send upstream with the deployment's model name in place of the public one.

JSON bodies are decoded once; everything but ``model`` (and the usage option the gateway may
add to a stream) reaches the upstream as the client sent it. Multipart bodies are not decoded
at all: the ``model`` field's value is swapped in place (:mod:`.multipart`): the body goes
upstream as three pieces (what precedes the value, the new value, what follows it), the two
large ones views of the body as received, written to the socket one after the other. The
upload is held once, for the whole request and every attempt.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors.client import InvalidRequest
from gateway.exchange.body import decode_json_object, invalid_type, missing
from gateway.openai_routes import multipart
from gateway.openai_routes.multipart import Part, Piece
from gateway.upstream.http11_transport import BodyPieces

_ENCODER = msgspec.json.Encoder()


class RouteRequest:
    """One request to a simple route; :meth:`body_for` builds each deployment's body."""

    __slots__ = ("_bodies", "content_type", "data", "max_tokens", "model", "parts", "raw", "stream")

    def __init__(
        self,
        *,
        raw: bytes,
        model: str,
        stream: bool,
        content_type: str,
        data: dict[str, Any] | None = None,
        parts: list[Part] | None = None,
        max_tokens: object = None,
    ) -> None:
        self.raw = raw
        self.model = model
        self.stream = stream
        self.content_type = content_type
        self.data = data
        self.parts = parts
        self.max_tokens = max_tokens
        self._bodies: dict[tuple[str, bool], bytes] = {}

    def body_for(self, upstream_model: str, *, ask_usage: bool = False) -> bytes | BodyPieces:
        """The body for a deployment serving ``upstream_model``. A JSON body is built once per
        model name (retries send the same bytes); an upload is the client's bytes when its
        model name is the upstream's, else those bytes in pieces around the new name."""
        if self.parts is not None:
            pieces = self._multipart_pieces(upstream_model)
            return self.raw if len(pieces) == 1 else BodyPieces(pieces)
        key = (upstream_model, ask_usage)
        body = self._bodies.get(key)
        if body is None:
            body = self._bodies[key] = self._build(upstream_model, ask_usage)
        return body

    def _build(self, upstream_model: str, ask_usage: bool) -> bytes:
        if self.data is not None:
            data = self.data
            if data.get("model") == upstream_model and not ask_usage:
                return self.raw
            data = {**data, "model": upstream_model}
            if ask_usage:
                options = data.get("stream_options")
                data["stream_options"] = {
                    **(options if isinstance(options, dict) else {}),
                    "include_usage": True,
                }
            return _ENCODER.encode(data)
        return self.raw

    def _multipart_pieces(self, upstream_model: str) -> list[Piece]:
        assert self.parts is not None
        part = multipart.find(self.parts, "model")
        value = upstream_model.encode()
        if part is not None:
            if self.raw[part.start : part.end] == value:
                return [self.raw]
            return multipart.replace(self.raw, part, value)
        return multipart.prepend_field(self.raw, self.content_type, "model", value)


def _model(value: object, default: str | None) -> str:
    if value is None:
        if default is None:
            raise missing("model")
        return default
    if not isinstance(value, str) or not value:
        raise invalid_type("model", "a string", value)
    return value


def parse_json(raw: bytes, *, default_model: str | None, streams: bool) -> RouteRequest:
    data = decode_json_object(raw)
    model = _model(data.get("model"), default_model)
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid_type("stream", "a boolean", stream)
    if stream and not streams:
        raise InvalidRequest(
            "This route does not stream; remove 'stream'.", param="stream", code="invalid_value"
        )
    return RouteRequest(
        raw=raw,
        model=model,
        stream=bool(stream),
        content_type="application/json",
        data=data,
        max_tokens=data.get("max_tokens"),
    )


def parse_multipart(
    raw: bytes, content_type: str | None, *, default_model: str | None, streams: bool
) -> RouteRequest:
    boundary = multipart.boundary_of(content_type)
    parts = multipart.scan(raw, boundary)
    model = _model(multipart.field(raw, parts, "model"), default_model)
    flag = (multipart.field(raw, parts, "stream") or "").strip().lower()
    stream = flag == "true"
    if stream and not streams:
        raise InvalidRequest(
            "This route does not stream; remove 'stream'.", param="stream", code="invalid_value"
        )
    assert content_type is not None
    return RouteRequest(raw=raw, model=model, stream=stream, content_type=content_type, parts=parts)
