"""Chat completion -> Responses Response object (non-streaming)."""

from __future__ import annotations

from typing import Any

from gateway.translate import SequentialIds, response_from_chat_completion

REQUEST: dict[str, Any] = {
    "model": "public-model",
    "instructions": "Be brief.",
    "input": "Weather?",
    "tools": [
        {"type": "function", "name": "w", "parameters": {"type": "object", "properties": {}}, "strict": False}
    ],
    "tool_choice": "auto",
    "temperature": 0.5,
    "metadata": {"team": "a"},
    "store": True,
}


def completion(
    message: dict[str, Any], finish_reason: str, usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-up",
        "object": "chat.completion",
        "created": 1,
        "model": "upstream-model",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage,
    }


def shell(**changes: Any) -> dict[str, Any]:
    """The Response fields that echo REQUEST."""
    base: dict[str, Any] = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1700000000,
        "status": "completed",
        "background": False,
        "completed_at": 1700000005,
        "error": None,
        "frequency_penalty": 0.0,
        "incomplete_details": None,
        "instructions": "Be brief.",
        "max_output_tokens": None,
        "max_tool_calls": None,
        "model": "public-model",
        "output": [],
        "parallel_tool_calls": True,
        "presence_penalty": 0.0,
        "previous_response_id": "resp_0",
        "prompt_cache_key": None,
        "prompt_cache_retention": None,
        "reasoning": {"effort": None, "summary": None},
        "safety_identifier": None,
        "service_tier": "default",
        "store": True,
        "temperature": 0.5,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [
            {
                "type": "function",
                "name": "w",
                "description": None,
                "parameters": {"type": "object", "properties": {}},
                "strict": False,
            }
        ],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": None,
        "user": None,
        "metadata": {"team": "a"},
    }
    base.update(changes)
    return base


def translate(chat: dict[str, Any]) -> dict[str, Any]:
    return response_from_chat_completion(
        chat,
        request=REQUEST,
        response_id="resp_1",
        created_at=1700000000,
        ids=SequentialIds(),
        previous_response_id="resp_0",
        completed_at=1700000005,
    )


USAGE = {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 3, "audio_tokens": 0},
}
MAPPED_USAGE = {
    "input_tokens": 19,
    "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
    "output_tokens": 10,
    "output_tokens_details": {"reasoning_tokens": 3},
    "total_tokens": 29,
}


def test_text_answer(sdk: Any) -> None:
    chat = completion({"role": "assistant", "content": "Sunny.", "refusal": None}, "stop", USAGE)
    response = translate(chat)
    assert response == shell(
        output=[
            {
                "id": "msg_1",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Sunny.", "annotations": [], "logprobs": []}],
            }
        ],
        usage=MAPPED_USAGE,
    )
    assert sdk.response(response).output_text == "Sunny."


def test_parallel_tool_calls_with_text(sdk: Any) -> None:
    chat = completion(
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "w", "arguments": '{"c":"Paris"}'}},
                {"id": "call_b", "type": "function", "function": {"name": "w", "arguments": '{"c":"Rome"}'}},
            ],
        },
        "tool_calls",
    )
    response = translate(chat)
    assert response["status"] == "completed"
    assert response["output"] == [
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Let me check.", "annotations": [], "logprobs": []}],
        },
        {
            "id": "fc_1",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_a",
            "name": "w",
            "arguments": '{"c":"Paris"}',
        },
        {
            "id": "fc_2",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_b",
            "name": "w",
            "arguments": '{"c":"Rome"}',
        },
    ]
    assert response["usage"] is None
    sdk.response(response)


def test_length_is_incomplete_max_output_tokens(sdk: Any) -> None:
    response = translate(completion({"role": "assistant", "content": "Once upon"}, "length", USAGE))
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["completed_at"] is None
    assert response["output"][0]["status"] == "incomplete"
    sdk.response(response)


def test_content_filter_is_incomplete() -> None:
    response = translate(completion({"role": "assistant", "content": ""}, "content_filter"))
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "content_filter"}
    assert response["output"] == []


def test_refusal_reasoning_and_annotations(sdk: Any) -> None:
    chat = completion(
        {
            "role": "assistant",
            "content": "See docs.",
            "reasoning_content": "The user wants a link.",
            "refusal": "I won't do the rest.",
            "annotations": [
                {
                    "type": "url_citation",
                    "url_citation": {
                        "start_index": 4,
                        "end_index": 8,
                        "title": "Docs",
                        "url": "https://d.example",
                    },
                }
            ],
        },
        "stop",
    )
    response = translate(chat)
    assert response["output"] == [
        {
            "id": "rs_1",
            "type": "reasoning",
            "summary": [],
            "content": [{"type": "reasoning_text", "text": "The user wants a link."}],
            "status": "completed",
        },
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {
                    "type": "output_text",
                    "text": "See docs.",
                    "annotations": [
                        {
                            "type": "url_citation",
                            "start_index": 4,
                            "end_index": 8,
                            "title": "Docs",
                            "url": "https://d.example",
                        }
                    ],
                    "logprobs": [],
                },
                {"type": "refusal", "refusal": "I won't do the rest."},
            ],
        },
    ]
    sdk.response(response)


def test_missing_call_id_gets_a_generated_one_and_defaults_echo() -> None:
    chat = completion(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"type": "function", "function": {"name": "w"}}],
        },
        "tool_calls",
    )
    response = response_from_chat_completion(
        chat,
        request={"model": "m", "input": "x"},
        response_id="resp_9",
        created_at=5,
        ids=SequentialIds(),
        previous_response_id=None,
    )
    assert response["output"] == [
        {
            "id": "fc_1",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_1",
            "name": "w",
            "arguments": "",
        }
    ]
    assert response["completed_at"] is None
    assert (response["tools"], response["tool_choice"], response["metadata"]) == ([], "auto", {})
    assert (response["temperature"], response["top_p"], response["parallel_tool_calls"]) == (1.0, 1.0, True)
    assert response["store"] is True
