"""The fake ``POST /embeddings``: deterministic vectors a test can recompute.

The vector of an input is :func:`vector_for` its text (token-id inputs: ``tokens:`` and the ids
joined with commas) and the width asked: ``dimensions``, else the model's own (3072 for a
``-large`` model, 1536 otherwise). Values are unit-normalised and rounded to float32, as OpenAI
serves them, so both encodings carry exactly the same numbers.

``encoding_format`` is honoured (``float`` by default, ``base64``: little-endian float32 bytes),
except by models whose name ends ``-floats-only`` (always a float list) or ``-base64-only``
(always base64): the two kinds of upstream that ignore the parameter. A model without ``embed``
in its name is not an embedding model: one of OpenAI's chat models (``gpt-4o``, ``o3``, ...) gets
OpenAI's own answer (403 "You are not allowed to generate embeddings from this model"), any other
a 400; ``ada-002`` refuses ``dimensions``; more than 2048 inputs is a 400, as OpenAI answers.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import msgspec
from litestar import Request

from fake_providers.exchange import Exchange
from fake_providers.openai.errors import OpenAIError, invalid_type, invalid_value
from fake_providers.openai.legacy import chat_only
from fake_providers.openai.route_kit import Refused, RouteKit
from fake_providers.openai.vectors import input_text, native_dimensions, vector_for
from fake_providers.reply import PlannedReply
from fake_providers.tokens import text_tokens

_ENCODER = msgspec.json.Encoder()
MAX_INPUTS = 2048
FLOATS_ONLY = "-floats-only"
BASE64_ONLY = "-base64-only"
NOT_EMBEDDING = "You are not allowed to generate embeddings from this model"
INVALID_INPUT = (
    "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."
)


def _inputs(value: Any) -> list[str | list[int]] | None:
    def tokens(v: Any) -> bool:
        return (
            isinstance(v, list) and bool(v) and all(isinstance(t, int) and not isinstance(t, bool) for t in v)
        )

    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, str) and v for v in value):
            return list(value)
        if tokens(value):
            return [value]
        if all(tokens(v) for v in value):
            return list(value)
    return None


class EmbeddingsService:
    def __init__(self, kit: RouteKit) -> None:
        self.kit = kit

    async def create(self, request: Request[Any, Any, Any]) -> PlannedReply:
        kit = self.kit
        try:
            exchange = kit.start(request)
            body = await kit.json(request, exchange)
            model = kit.model(body.get("model"), exchange)
            behaviour = kit.behaviour(model, exchange)
            # A `fault-...` model is no embedding model: its answer (when the fault sends one) is
            # the one a small embedding model would give.
            served = model if behaviour.fault is None or "embed" in model else "text-embedding-3-small"
            answer = self._answer(body, served, exchange)
        except Refused as refused:
            return refused.reply
        return kit.answer(exchange, behaviour, render=lambda: answer)

    def _answer(self, body: dict[str, Any], model: str, exchange: Exchange) -> bytes:
        refuse = self.kit.refuse
        if "embed" not in model and chat_only(model):
            raise refuse(OpenAIError(NOT_EMBEDDING, status=403), exchange)
        if "embed" not in model:
            raise refuse(
                OpenAIError(f"The model `{model}` does not support embeddings.", param="model"), exchange
            )
        inputs = _inputs(body.get("input"))
        if inputs is None:
            raise refuse(OpenAIError(INVALID_INPUT, param="input"), exchange)
        if len(inputs) > MAX_INPUTS:
            raise refuse(
                OpenAIError(f"Too many inputs. The max number of inputs is {MAX_INPUTS}.", param="input"),
                exchange,
            )
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            if not isinstance(encoding, str):
                raise refuse(invalid_type("encoding_format", "a string", encoding), exchange)
            raise refuse(invalid_value("encoding_format", encoding, ("float", "base64")), exchange)
        dimensions = body.get("dimensions")
        width = native_dimensions(model)
        if dimensions is not None:
            if "ada-002" in model:
                raise refuse(
                    OpenAIError("This model does not support specifying dimensions.", param="dimensions"),
                    exchange,
                )
            if (
                not isinstance(dimensions, int)
                or isinstance(dimensions, bool)
                or not 1 <= dimensions <= width
            ):
                raise refuse(
                    OpenAIError(
                        f"Invalid 'dimensions': expected an integer between 1 and {width}.",
                        param="dimensions",
                    ),
                    exchange,
                )
            width = dimensions
        if model.endswith(FLOATS_ONLY):
            encoding = "float"
        elif model.endswith(BASE64_ONLY):
            encoding = "base64"
        data: list[dict[str, Any]] = []
        tokens = 0
        for index, item in enumerate(inputs):
            text = input_text(item)
            tokens += len(item) if isinstance(item, list) else text_tokens(text)
            vector = vector_for(text, width)
            encoded: Any = vector
            if encoding == "base64":
                encoded = base64.b64encode(struct.pack(f"<{width}f", *vector)).decode("ascii")
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        exchange.input_tokens = tokens
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return _ENCODER.encode({"object": "list", "data": data, "model": model, "usage": usage})
