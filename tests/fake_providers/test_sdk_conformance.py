"""The official `openai` and `anthropic` SDKs against the fakes, for the behaviours the other test
modules check on the raw wire: what the SDK parses out of each answer, which exception it raises,
and whether its own retry logic reacts to the fakes' headers as it does against the real services.
Also: reasoning items (`rs_…`) and `truncation: "auto"` on the Responses API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import jsonschema
import openai
import pytest

from fake_providers.testing import FakeProviders

CHAT = "/openai/v1/chat/completions"
RESPONSES = "/openai/v1/responses"
MESSAGES_PATH = "/anthropic/v1/messages"
HELLO: Any = [{"role": "user", "content": "hello there"}]
SCHEMA: Any = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
    "required": ["city", "days"],
}
CHAT_TOOL: Any = {"type": "function", "function": {"name": "forecast", "parameters": SCHEMA}}
RESPONSES_TOOL: Any = {"type": "function", "name": "forecast", "parameters": SCHEMA, "strict": False}
CLAUDE_TOOL: Any = {"name": "forecast", "description": "Forecast", "input_schema": SCHEMA}
CLAUDE = "claude-haiku-4-5"
FAST_RETRY = {"retry-after-ms": "1", "retry-after": "0"}  # the SDKs wait 1 ms instead of backing off


@pytest.fixture
def claude(providers: FakeProviders) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=providers.anthropic_base_url, api_key="sk-ant-test", max_retries=0
    ) as sdk:
        yield sdk


def retrying_openai(providers: FakeProviders, base_url: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url or providers.openai_base_url, api_key="sk-test", max_retries=2)


# --- Chat Completions ------------------------------------------------------------------------


def test_chat_include_usage_chunk_matches_the_json_usage(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and whole.usage is not None
    assert chunks[-1].usage.model_dump() == whole.usage.model_dump()
    assert whole.usage.prompt_tokens > 0 and whole.usage.completion_tokens > 0
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks[:-1]) == "You said: hello there"
    assert [chunk.choices[0].finish_reason for chunk in chunks[:-1]][-1] == "stop"


def test_chat_stream_helper_assembles_forced_tool_call_arguments(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="gpt-4o-mini", messages=HELLO, tools=[CHAT_TOOL], tool_choice="required"
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_completion()
    assert "tool_calls.function.arguments.delta" in kinds
    assert "tool_calls.function.arguments.done" in kinds
    [call] = final.choices[0].message.tool_calls or []
    assert final.choices[0].finish_reason == "tool_calls"
    assert call.id.startswith("call_")
    assert call.type == "function"
    assert call.function.name == "forecast"
    jsonschema.validate(json.loads(call.function.arguments), SCHEMA)


def test_chat_tool_call_id_pairing_through_the_sdk(client: openai.OpenAI) -> None:
    orphan: Any = [*HELLO, {"role": "tool", "tool_call_id": "call_x", "content": "sunny"}]
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=orphan)
    assert raised.value.body == {
        "message": "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
        "with 'tool_calls'.",
        "type": "invalid_request_error",
        "param": "messages.[1].role",
        "code": None,
    }


def test_chat_cut_stream_is_a_connection_error_in_the_sdk(client: openai.OpenAI) -> None:
    received: list[str] = []
    stream = client.chat.completions.create(model="fault-cut-2", messages=HELLO, stream=True)
    with pytest.raises(openai.APIConnectionError):
        received.extend(chunk.choices[0].delta.content or "" for chunk in stream)
    assert received == ["", "You "]  # the two chunks before the cut


def test_chat_200_error_parses_into_an_empty_completion(client: openai.OpenAI) -> None:
    """The SDK does not raise for a 200 whose body is an error: a gateway must look inside."""
    completion = client.chat.completions.create(model="fault-200-error", messages=HELLO)
    assert completion.choices is None
    assert (completion.model_extra or {})["error"]["type"] == "server_error"


def test_chat_hidden_429_is_an_internal_server_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model="fault-hidden-429", messages=HELLO)
    assert raised.value.status_code == 500
    assert "429 Too Many Requests" in raised.value.message


@pytest.mark.parametrize("fault", ["500", "503", "529", "429-quota"])
def test_the_sdk_retries_what_it_should(providers: FakeProviders, fault: str) -> None:
    providers.script([{"fault": fault, "headers": FAST_RETRY}], model="gpt-4o-mini")
    with retrying_openai(providers) as sdk:
        completion = sdk.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert completion.choices[0].message.content == "You said: hello there"
    attempts = providers.requests(path=CHAT)
    assert [entry.headers["x-stainless-retry-count"] for entry in attempts] == ["0", "1"]


def test_x_should_retry_false_vetoes_the_sdk_retry(providers: FakeProviders) -> None:
    providers.script(
        [{"fault": "503", "headers": {**FAST_RETRY, "x-should-retry": "false"}}], model="gpt-4o-mini"
    )
    with retrying_openai(providers) as sdk, pytest.raises(openai.InternalServerError) as raised:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert raised.value.code == "server_is_overloaded"
    assert len(providers.requests(path=CHAT)) == 1


@pytest.mark.parametrize(
    ("prefix", "key", "model"),
    [
        ("/vllm/v1", "max_model_len", "qwen2.5-7b-instruct"),
        ("/groq/openai/v1", "context_window", "llama-3.1-8b-instant"),
        ("/openrouter/api/v1", "context_length", "qwen/qwen2.5-7b-instruct"),
        ("/mistral/v1", "max_context_length", "mistral-small-latest"),
    ],
)
def test_other_dialects_through_the_openai_sdk(
    providers: FakeProviders, prefix: str, key: str, model: str
) -> None:
    with openai.OpenAI(base_url=providers.base_url + prefix, api_key="sk-test", max_retries=0) as sdk:
        listed = {entry.id: entry for entry in sdk.models.list()}
        reply = sdk.chat.completions.create(model=model, messages=HELLO)
    assert (listed[model].model_extra or {})[key] in (32768, 131072)
    assert reply.choices[0].message.content == "You said: hello there"


# --- Responses -------------------------------------------------------------------------------


def test_reasoning_item_with_summary_and_encrypted_content(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="gpt-4o-mini",
        input="hello there",
        reasoning={"effort": "low", "summary": "auto"},
        include=["reasoning.encrypted_content"],
    )
    reasoning, message = response.output
    assert reasoning.type == "reasoning"
    assert reasoning.id.startswith("rs_") and len(reasoning.id) == 51
    assert [part.text for part in reasoning.summary] == [
        "**Planning the reply**\n\nI will answer: You said: hello there"
    ]
    assert reasoning.encrypted_content is not None and reasoning.encrypted_content.startswith("gAAAAA")
    assert message.type == "message" and response.output_text == "You said: hello there"
    assert response.usage is not None
    assert response.usage.output_tokens_details.reasoning_tokens == 16  # effort "low"
    assert response.usage.output_tokens == 16 + 6  # reasoning plus the visible text
    assert response.reasoning is not None and response.reasoning.effort == "low"


def test_reasoning_without_summary_or_encryption(client: openai.OpenAI) -> None:
    response = client.responses.create(model="gpt-4o-mini", input="hi", reasoning={"effort": "high"})
    reasoning = response.output[0]
    assert reasoning.type == "reasoning"
    assert reasoning.summary == []
    assert reasoning.encrypted_content is None
    assert "encrypted_content" not in reasoning.model_dump(exclude_unset=True)
    assert response.usage is not None and response.usage.output_tokens_details.reasoning_tokens == 256


@pytest.mark.parametrize("reasoning", [None, {"effort": "none"}, {"effort": "none", "summary": "auto"}])
def test_no_reasoning_item_unless_asked(client: openai.OpenAI, reasoning: Any) -> None:
    extra = {} if reasoning is None else {"reasoning": reasoning}
    response = client.responses.create(model="gpt-4o-mini", input="hi", **extra)
    assert [item.type for item in response.output] == ["message"]
    assert response.usage is not None and response.usage.output_tokens_details.reasoning_tokens == 0


def test_reasoning_stream_events_through_the_sdk(client: openai.OpenAI) -> None:
    whole = client.responses.create(
        model="gpt-4o-mini", input="hello there", reasoning={"summary": "detailed"}
    )
    with client.responses.stream(
        model="gpt-4o-mini", input="hello there", reasoning={"summary": "detailed"}
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    summary_events = [kind for kind in kinds if "reasoning_summary" in kind]
    assert summary_events[0] == "response.reasoning_summary_part.added"
    assert set(summary_events[1:-2]) == {"response.reasoning_summary_text.delta"}
    assert summary_events[-2:] == [
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
    ]
    assert kinds.index("response.reasoning_summary_part.done") < kinds.index("response.output_text.delta")
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = "".join(event.delta for event in events if event.type == "response.reasoning_summary_text.delta")
    assert deltas == final.output[0].summary[0].text  # type: ignore[union-attr]
    assert final.output[0].id.startswith("rs_")  # type: ignore[union-attr]
    assert final.usage is not None and whole.usage is not None
    assert final.usage.model_dump() == whole.usage.model_dump()
    assert whole.usage.output_tokens_details.reasoning_tokens == 64  # no effort: "medium"


def test_reasoning_items_chain_and_replay(client: openai.OpenAI) -> None:
    first = client.responses.create(model="gpt-4o-mini", input="first", reasoning={"effort": "low"})
    chained = client.responses.create(model="gpt-4o-mini", input="second", previous_response_id=first.id)
    assert chained.output_text == "You said: second"
    stateless = client.responses.create(
        model="gpt-4o-mini",
        store=False,
        input=[
            {"role": "user", "content": "first"},
            *[item.model_dump(exclude_none=True) for item in first.output],
            {"role": "user", "content": "second"},
        ],
    )
    assert stateless.output_text == "You said: second"
    items = client.responses.input_items.list(chained.id)
    assert [item.type for item in items.data] == ["message"]  # only the request's own input


def test_truncation_auto_drops_the_oldest_items(client: openai.OpenAI) -> None:
    """gpt-3.5-turbo's window is 4097 tokens; each long turn is about 2,500."""
    long_text = "word " * 2000
    first = client.responses.create(model="gpt-3.5-turbo", input=long_text, max_output_tokens=16)
    assert first.usage is not None and first.usage.input_tokens > 2000
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="gpt-3.5-turbo", input=long_text, previous_response_id=first.id)
    assert raised.value.code == "context_length_exceeded"
    assert raised.value.param == "input"
    truncated = client.responses.create(
        model="gpt-3.5-turbo", input=long_text + "end", previous_response_id=first.id, truncation="auto"
    )
    assert truncated.truncation == "auto"
    assert truncated.usage is not None
    assert 2000 < truncated.usage.input_tokens <= 4097  # only the newest turn is left
    assert truncated.output_text.endswith("word end")
    # Even the newest item alone does not fit: still a 400.
    with pytest.raises(openai.BadRequestError) as too_big:
        client.responses.create(model="gpt-3.5-turbo", input="word " * 5000, truncation="auto")
    assert too_big.value.code == "context_length_exceeded"


def test_truncation_auto_drops_a_call_with_its_output(client: openai.OpenAI) -> None:
    long_args = json.dumps({"city": "x" * 9000, "days": 1})
    items: Any = [
        {"type": "function_call", "call_id": "call_old", "name": "forecast", "arguments": long_args},
        {"type": "function_call_output", "call_id": "call_old", "output": "rain"},
        {"role": "user", "content": "and now?"},
    ]
    response = client.responses.create(
        model="gpt-3.5-turbo", input=items, tools=[RESPONSES_TOOL], truncation="auto"
    )
    assert response.output_text == "You said: and now?"  # not "Tool results: …": the output went too


def test_function_call_stream_through_the_sdk(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model="gpt-4o-mini", input="x", tools=[RESPONSES_TOOL], tool_choice="required"
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    [call] = final.output
    assert call.type == "function_call"
    assert call.id.startswith("fc_") and call.call_id.startswith("call_")
    deltas = [event.delta for event in events if event.type == "response.function_call_arguments.delta"]
    assert "".join(deltas) == call.arguments
    assert all(len(delta) <= 16 for delta in deltas)
    jsonschema.validate(json.loads(call.arguments), SCHEMA)
    assert events[-1].type == "response.completed"


def test_incomplete_stream_through_the_sdk(client: openai.OpenAI) -> None:
    """The SDK's stream helper only hands out a final response for `response.completed`; an
    incomplete one is read from the terminal event, as against OpenAI."""
    with client.responses.stream(model="gpt-4o-mini", input="word " * 100, max_output_tokens=16) as stream:
        events = list(stream)
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()
    terminal = events[-1]
    assert terminal.type == "response.incomplete"
    assert terminal.response.status == "incomplete"
    assert terminal.response.incomplete_details is not None
    assert terminal.response.incomplete_details.reason == "max_output_tokens"


def test_delete_and_missing_ids_through_the_sdk(client: openai.OpenAI) -> None:
    created = client.responses.create(model="gpt-4o-mini", input="keep me")
    client.responses.delete(created.id)
    for call in (
        lambda: client.responses.retrieve(created.id),
        lambda: client.responses.delete(created.id),
        lambda: client.responses.input_items.list(created.id),
    ):
        with pytest.raises(openai.NotFoundError) as raised:
            call()
        assert raised.value.code == "response_not_found"
        assert raised.value.param == "response_id"


def test_responses_cut_stream_is_a_connection_error_in_the_sdk(
    providers: FakeProviders, client: openai.OpenAI
) -> None:
    seen: list[str] = []
    with (
        pytest.raises(openai.APIConnectionError),
        client.responses.stream(model="fault-cut-3", input="hi") as stream,
    ):
        seen.extend(event.type for event in stream)
    assert seen == ["response.created", "response.in_progress", "response.output_item.added"]
    assert providers.stored_responses() == []


def test_responses_sdk_retries_a_429(providers: FakeProviders) -> None:
    providers.script([{"fault": "429", "headers": FAST_RETRY}], model="gpt-4o-mini")
    with retrying_openai(providers) as sdk:
        response = sdk.responses.create(model="gpt-4o-mini", input="hi")
    assert response.output_text == "You said: hi"
    assert [e.headers["x-stainless-retry-count"] for e in providers.requests(path=RESPONSES)] == ["0", "1"]


# --- Anthropic Messages ----------------------------------------------------------------------


def test_anthropic_text_stream_through_the_sdk(claude: anthropic.Anthropic) -> None:
    whole = claude.messages.create(model=CLAUDE, max_tokens=50, messages=HELLO)
    with claude.messages.stream(model=CLAUDE, max_tokens=50, messages=HELLO) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert "content_block_start" in kinds and "content_block_stop" in kinds
    assert final.content[0].type == "text" and final.content[0].text == "You said: hello there"
    assert final.stop_reason == "end_turn"
    assert final.id.startswith("msg_01")
    assert final.usage.input_tokens == whole.usage.input_tokens > 0
    assert final.usage.output_tokens == whole.usage.output_tokens > 0


def test_anthropic_tool_use_stream_through_the_sdk(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model=CLAUDE,
        max_tokens=200,
        messages=HELLO,
        tools=[CLAUDE_TOOL],
        tool_choice={"type": "tool", "name": "forecast"},
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    json_parts = [
        event.delta.partial_json
        for event in events
        if event.type == "content_block_delta" and event.delta.type == "input_json_delta"
    ]
    assert json_parts[0] == ""  # Anthropic's empty first fragment
    [block] = final.content
    assert block.type == "tool_use" and block.id.startswith("toolu_01")
    assert json.loads("".join(json_parts)) == block.input
    jsonschema.validate(block.input, SCHEMA)
    assert final.stop_reason == "tool_use"


def test_anthropic_unknown_fields_are_ignored(claude: anthropic.Anthropic, providers: FakeProviders) -> None:
    message = claude.messages.create(
        model=CLAUDE, max_tokens=50, messages=HELLO, extra_body={"future_field": {"x": 1}}
    )
    assert message.content[0].type == "text"
    assert providers.requests(path=MESSAGES_PATH)[-1].body["future_field"] == {"x": 1}


def test_anthropic_prompt_too_long_through_the_sdk(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as raised:
        claude.messages.create(
            model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "word " * 170000}]
        )
    assert raised.value.body["error"]["message"].startswith("prompt is too long: ")  # type: ignore[index]
    assert raised.value.body["error"]["message"].endswith(" tokens > 200000 maximum")  # type: ignore[index]


@pytest.mark.parametrize("fault", ["529", "429", "500"])
def test_anthropic_sdk_retries_overload_and_rate_limit(providers: FakeProviders, fault: str) -> None:
    providers.script([{"fault": fault, "headers": FAST_RETRY}], model=CLAUDE)
    with anthropic.Anthropic(base_url=providers.anthropic_base_url, api_key="sk-ant", max_retries=2) as sdk:
        message = sdk.messages.create(model=CLAUDE, max_tokens=50, messages=HELLO)
    assert message.content[0].type == "text"
    attempts = providers.requests(path=MESSAGES_PATH)
    assert [entry.headers["x-stainless-retry-count"] for entry in attempts] == ["0", "1"]
    assert all(entry.headers["anthropic-version"] for entry in attempts)  # the SDK's own version


def test_anthropic_529_carries_x_should_retry(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.OverloadedError) as raised:
        claude.messages.create(model="fault-529", max_tokens=5, messages=HELLO)
    assert raised.value.status_code == 529
    assert raised.value.response.headers["x-should-retry"] == "true"
    assert raised.value.request_id == raised.value.response.headers["request-id"]


def test_anthropic_cut_stream_breaks_the_sdk_stream(claude: anthropic.Anthropic) -> None:
    seen: list[str] = []
    with (
        pytest.raises(Exception, match="incomplete chunked read"),  # the SDK's transport error, unwrapped
        claude.messages.stream(model="fault-cut-2", max_tokens=10, messages=HELLO) as stream,
    ):
        seen.extend(event.type for event in stream)
    assert seen[:1] == ["message_start"]
    assert "message_stop" not in seen


def test_responses_unknown_fields_are_ignored(client: openai.OpenAI, providers: FakeProviders) -> None:
    """Newer clients send fields an older server does not know: the fakes accept and ignore them."""
    future = {"context_management": [{"type": "compaction"}], "prompt_cache_options": {"mode": "x"}}
    response = client.responses.create(model="gpt-4o-mini", input="hi", extra_body=future)
    assert response.output_text == "You said: hi"
    sent = providers.requests(path=RESPONSES)[-1].body
    assert {key: sent[key] for key in future} == future


def test_chat_structured_output_is_an_example_of_the_schema(client: openai.OpenAI) -> None:
    for model in ("gpt-4o-mini", "meta-llama/Llama-3.1-8B-Instruct"):
        sdk = (
            client
            if model == "gpt-4o-mini"
            else client.with_options(base_url=client.base_url.join("/vllm/v1"))
        )
        answer = sdk.chat.completions.create(
            model=model,
            messages=HELLO,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "forecast", "schema": SCHEMA, "strict": True},
            },
        )
        value = json.loads(answer.choices[0].message.content or "")
        jsonschema.validate(value, SCHEMA)
    json_object = client.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, response_format={"type": "json_object"}
    )
    assert json.loads(json_object.choices[0].message.content or "") == {"text": "You said: hello there"}
    streamed = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(
            model="gpt-4o-mini",
            messages=HELLO,
            stream=True,
            response_format={"type": "json_schema", "json_schema": {"name": "forecast", "schema": SCHEMA}},
        )
        if chunk.choices
    )
    jsonschema.validate(json.loads(streamed), SCHEMA)
