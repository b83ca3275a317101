"""Chat Completions answers -> Responses objects: the response shell, usage, status, errors.

The streaming converter (:mod:`gateway.translate.responses_stream`) builds on the same pieces.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from gateway.translate.ids import Ids
from gateway.translate.response_object import response_skeleton
from gateway.translate.responses_tools import ToolNames

# ResponseErrorCode values (the SDK validates `response.error.code` against this set).
RESPONSE_ERROR_CODES = frozenset(
    {
        "server_error",
        "rate_limit_exceeded",
        "invalid_prompt",
        "data_residency_mismatch",
        "bio_policy",
        "misalignment_policy_violation",
        "vector_store_timeout",
        "invalid_image",
        "invalid_image_format",
        "invalid_base64_image",
        "invalid_image_url",
        "image_too_large",
        "image_too_small",
        "image_parse_error",
        "image_content_policy_violation",
        "invalid_image_mode",
        "image_file_too_large",
        "unsupported_image_media_type",
        "empty_image_file",
        "failed_to_download_image",
        "image_file_not_found",
    }
)


def response_shell(
    request: Mapping[str, Any], *, response_id: str, created_at: int, previous_response_id: str | None
) -> dict[str, Any]:
    """A Response object echoing the request's settings, ``in_progress``, with no output yet
    (:func:`gateway.translate.response_object.response_skeleton`)."""
    return response_skeleton(
        request, response_id=response_id, created_at=created_at, previous_response_id=previous_response_id
    )


def usage_from_chat(usage: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Chat ``usage`` -> Responses ``usage`` (cached and reasoning counts included)."""
    if not usage:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    total = usage.get("total_tokens")
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": int(prompt_details.get("cached_tokens") or 0),
            "cache_write_tokens": int(prompt_details.get("cache_write_tokens") or 0),
        },
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": int(completion_details.get("reasoning_tokens") or 0)},
        "total_tokens": int(total) if total is not None else prompt + completion,
    }


def terminal_status(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    """Chat ``finish_reason`` -> Responses ``(status, incomplete_details)``."""
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def response_error(error: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI error object -> the ``{code, message}`` of a failed Response.

    ``code`` must be one of the ResponseErrorCode values; anything else becomes
    ``rate_limit_exceeded`` for rate limits and ``server_error`` otherwise.
    """
    code = error.get("code")
    if code not in RESPONSE_ERROR_CODES:
        rate_limited = error.get("kind") == "rate_limit" or error.get("type") in (
            "tokens",
            "requests",
            "rate_limit_error",
        )
        code = "rate_limit_exceeded" if rate_limited else "server_error"
    return {"code": code, "message": str(error.get("message") or "The upstream model failed.")}


def message_text_part(
    text: str, annotations: list[dict[str, Any]] | None = None, logprobs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": annotations or [], "logprobs": logprobs or []}


def _logprob(entry: Mapping[str, Any]) -> dict[str, Any]:
    token = str(entry.get("token") or "")
    raw = entry.get("bytes")
    return {
        "token": token,
        "logprob": entry.get("logprob") if isinstance(entry.get("logprob"), int | float) else 0.0,
        "bytes": raw if isinstance(raw, list) else list(token.encode()),
    }


def responses_logprobs(chat_logprobs: Any) -> list[dict[str, Any]]:
    """A Chat choice's ``logprobs`` (``{"content": [...]}``) as the ``logprobs`` of a Responses
    output text: the same tokens, each with its ``top_logprobs``; [] when there are none."""
    content = chat_logprobs.get("content") if isinstance(chat_logprobs, Mapping) else None
    if not isinstance(content, list):
        return []
    out: list[dict[str, Any]] = []
    for entry in content:
        if isinstance(entry, Mapping):
            top = entry.get("top_logprobs")
            ranked = (
                [_logprob(other) for other in top if isinstance(other, Mapping)]
                if isinstance(top, list)
                else []
            )
            out.append({**_logprob(entry), "top_logprobs": ranked})
    return out


def reasoning_text(message: Mapping[str, Any]) -> str | None:
    """The reasoning text some Chat servers add (``reasoning_content``, or ``reasoning``)."""
    value = message.get("reasoning_content")
    if not isinstance(value, str):
        value = message.get("reasoning")
    return value if isinstance(value, str) and value else None


class ResponseShell(TypedDict):
    """What the client's Response object is built around, whatever the answer: the request as
    the client sent it, the response's id and creation time, the ids of its output items and
    the parent response's id."""

    request: Mapping[str, Any]
    response_id: str
    created_at: int
    ids: Ids
    previous_response_id: str | None


def _annotations(chat_annotations: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for annotation in chat_annotations or ():
        citation = annotation.get("url_citation") if annotation.get("type") == "url_citation" else None
        if isinstance(citation, Mapping):
            out.append({"type": "url_citation", **citation})
    return out


def response_from_chat_completion(
    completion: Mapping[str, Any],
    *,
    request: Mapping[str, Any],
    response_id: str,
    created_at: int,
    ids: Ids,
    previous_response_id: str | None,
    completed_at: int | None = None,
) -> dict[str, Any]:
    """Build the full Response object for a (non-streaming) Chat completion.

    Only the first choice is used (Responses has no ``n``). ``completed_at`` is set on the
    response when given and the status is ``completed``.
    """
    response = response_skeleton(
        request, response_id=response_id, created_at=created_at, previous_response_id=previous_response_id
    )
    choices = completion.get("choices") or ()
    choice: Mapping[str, Any] = choices[0] if choices else {}
    message: Mapping[str, Any] = choice.get("message") or {}
    output: list[dict[str, Any]] = []

    thought = reasoning_text(message)
    if thought is not None:
        output.append(
            {
                "id": ids.reasoning(),
                "type": "reasoning",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": thought}],
                "status": "completed",
            }
        )

    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, list):  # a few servers answer with parts
        content = "".join(p.get("text") or "" for p in content if isinstance(p, Mapping))
    if content:
        parts.append(
            message_text_part(
                content, _annotations(message.get("annotations")), responses_logprobs(choice.get("logprobs"))
            )
        )
    if message.get("refusal"):
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    if parts:
        output.append(
            {
                "id": ids.message(),
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": parts,
            }
        )

    calls = message.get("tool_calls")
    names = ToolNames(request.get("tools")) if calls else None
    for call in calls or ():
        function = call.get("function") or {}
        item = {
            "id": ids.function_call(),
            "type": "function_call",
            "status": "completed",
            "call_id": call.get("id") or ids.call(),
            "name": function.get("name") or "",
            "arguments": function.get("arguments") or "",
        }
        if names:
            names.restore(item)
        output.append(item)

    status, incomplete = terminal_status(choice.get("finish_reason"))
    if status == "incomplete" and output:
        output[-1]["status"] = "incomplete"
    response["status"] = status
    response["incomplete_details"] = incomplete
    response["completed_at"] = completed_at if status == "completed" else None
    response["output"] = output
    response["usage"] = usage_from_chat(completion.get("usage"))
    return response
