"""The fake ``POST /completions`` (legacy text completions) and ``POST /moderations``.

Completions answer each prompt with ``You said: <prompt>`` cut to ``max_tokens`` (16 by default,
as OpenAI's; four characters a token, ``finish_reason: length`` when cut). A stream sends one
chunk per word, a chunk with the finish reason, the usage chunk when
``stream_options.include_usage`` is set, then ``[DONE]``. OpenAI's chat models (``gpt-4...``,
``gpt-3.5-turbo`` but not ``-instruct``, ``o1``/``o3``/``o4``) are refused with OpenAI's 404.

Moderations flag an input mentioning ``kill`` as violence and ``idiot`` as harassment; every
other category is false with a small score.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request

from fake_providers.composer import split_text
from fake_providers.exchange import Exchange
from fake_providers.ids import system_fingerprint
from fake_providers.openai.errors import OpenAIError, missing_parameter
from fake_providers.openai.route_kit import Refused, RouteKit
from fake_providers.reply import PlannedReply
from fake_providers.sse import DONE_FRAME, data_frame
from fake_providers.tokens import chars_for_tokens, text_tokens

_ENCODER = msgspec.json.Encoder()
DEFAULT_MAX_TOKENS = 16
CHAT_ONLY = (
    "This is a chat model and not supported in the v1/completions endpoint. Did you mean to use "
    "v1/chat/completions?"
)
CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
TRIGGERS = {"kill": "violence", "idiot": "harassment"}


def chat_only(model: str) -> bool:
    if model.endswith("-instruct") or "instruct" in model:
        return False
    return model.startswith(("gpt-4", "gpt-5", "o1", "o3", "o4", "chatgpt")) or model.startswith(
        "gpt-3.5-turbo"
    )


def _prompts(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return list(value)
        if all(isinstance(v, int) for v in value):
            return ["tokens:" + ",".join(str(v) for v in value)]
        if all(isinstance(v, list) for v in value):
            return ["tokens:" + ",".join(str(t) for t in v) for v in value]
    return None


class LegacyService:
    def __init__(self, kit: RouteKit) -> None:
        self.kit = kit

    async def completions(self, request: Request[Any, Any, Any]) -> PlannedReply:
        kit = self.kit
        try:
            exchange = kit.start(request)
            body = await kit.json(request, exchange)
            model = kit.model(body.get("model"), exchange)
            behaviour = kit.behaviour(model, exchange)
            if behaviour.fault is None and chat_only(model):
                raise kit.refuse(OpenAIError(CHAT_ONLY, param="model", status=404), exchange)
            prompts = _prompts(body.get("prompt"))
            if prompts is None:
                if "prompt" not in body:
                    raise kit.refuse(missing_parameter("prompt"), exchange)
                raise kit.refuse(OpenAIError("'$.prompt' is invalid.", param="prompt"), exchange)
        except Refused as refused:
            return refused.reply
        limit = body.get("max_tokens")
        limit = limit if isinstance(limit, int) and limit > 0 else DEFAULT_MAX_TOKENS
        state_ids = kit.ids
        identity = {
            "id": state_ids.prefixed("cmpl-", 29),
            "object": "text_completion",
            "created": state_ids.created(),
            "model": model,
            "system_fingerprint": system_fingerprint(model),
        }
        texts: list[tuple[str, str]] = []
        for prompt in prompts:
            text = "You said: " + prompt
            cut = text[: chars_for_tokens(limit)]
            texts.append((cut, "length" if len(cut) < len(text) else "stop"))
        prompt_tokens = sum(max(1, text_tokens(p)) for p in prompts)
        completion_tokens = sum(max(1, text_tokens(t)) for t, _ in texts)
        exchange.input_tokens = prompt_tokens
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

        def whole() -> bytes:
            choices = [
                {"text": text, "index": i, "logprobs": None, "finish_reason": finish}
                for i, (text, finish) in enumerate(texts)
            ]
            return _ENCODER.encode({**identity, "choices": choices, "usage": usage})

        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True

        def frames() -> list[bytes]:
            out: list[bytes] = []
            extra = {"usage": None} if include_usage else {}
            for i, (text, finish) in enumerate(texts):
                for piece in split_text(text):
                    choice = {"text": piece, "index": i, "logprobs": None, "finish_reason": None}
                    out.append(data_frame({**identity, "choices": [choice], **extra}))
                choice = {"text": "", "index": i, "logprobs": None, "finish_reason": finish}
                out.append(data_frame({**identity, "choices": [choice], **extra}))
            if include_usage:
                out.append(data_frame({**identity, "choices": [], "usage": usage}))
            out.append(DONE_FRAME)
            return out

        stream = body.get("stream") is True
        return kit.answer(exchange, behaviour, render=whole, stream=frames if stream else None)

    async def moderations(self, request: Request[Any, Any, Any]) -> PlannedReply:
        kit = self.kit
        try:
            exchange = kit.start(request)
            body = await kit.json(request, exchange)
            model = kit.model(body.get("model"), exchange, required=False) or "omni-moderation-latest"
            exchange.model = model
            behaviour = kit.behaviour(model, exchange)
            texts = self._inputs(body, exchange)
        except Refused as refused:
            return refused.reply
        results = [self._result(text) for text in texts]
        answer = _ENCODER.encode({"id": kit.ids.prefixed("modr-", 24), "model": model, "results": results})
        return kit.answer(exchange, behaviour, render=lambda: answer)

    def _inputs(self, body: dict[str, Any], exchange: Exchange) -> list[str]:
        value = body.get("input")
        if value is None:
            raise self.kit.refuse(missing_parameter("input"), exchange)
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and value:
            out: list[str] = []
            for item in value:
                if isinstance(item, str):
                    out.append(item)
                elif (
                    isinstance(item, dict)
                    and item.get("type") == "text"
                    and isinstance(item.get("text"), str)
                ):
                    out.append(item["text"])
                elif isinstance(item, dict) and item.get("type") == "image_url":
                    out.append("")
                else:
                    break
            else:
                return out
        raise self.kit.refuse(OpenAIError("'$.input' is invalid.", param="input"), exchange)

    def _result(self, text: str) -> dict[str, Any]:
        lowered = text.lower()
        hit = {category for word, category in TRIGGERS.items() if word in lowered}
        return {
            "flagged": bool(hit),
            "categories": {c: c in hit for c in CATEGORIES},
            "category_scores": {c: 0.97 if c in hit else 0.0001 for c in CATEGORIES},
            "category_applied_input_types": {c: ["text"] for c in CATEGORIES},
        }
