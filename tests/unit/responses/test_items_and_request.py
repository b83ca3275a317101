"""Items of a turn (normalising, ids, the tool-output check, replay shaping) and request checks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.errors.client import InvalidRequest
from gateway.responses.items import (
    check_tool_outputs,
    for_responses_upstream,
    function_call_ids,
    index_by_id,
    normalize_input,
    resolve_references,
    with_ids,
    without_minted_ids,
)
from gateway.responses.request import parse_responses_request


def test_a_string_input_is_one_user_message() -> None:
    assert normalize_input("Hi") == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
    ]
    assert normalize_input(None) == []


def test_easy_messages_become_typed_with_parts() -> None:
    given: list[dict[str, Any]] = [
        {"role": "assistant", "content": "Earlier"},
        {"role": "system", "content": [{"type": "input_text", "text": "Rules"}]},
        {"type": "function_call_output", "call_id": "call_1", "output": "{}"},
    ]
    before = json.dumps(given)
    assert normalize_input(given) == [
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Earlier", "annotations": []}],
        },
        {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "Rules"}]},
        {"type": "function_call_output", "call_id": "call_1", "output": "{}"},
    ]
    assert json.dumps(given) == before  # the caller's objects are never changed


def test_ids_are_minted_only_where_missing() -> None:
    items, minted = with_ids(
        [
            {"type": "message", "role": "user", "content": []},
            {"id": "fco_given", "type": "function_call_output", "call_id": "c", "output": ""},
            {"type": "function_call_output", "call_id": "d", "output": ""},
            {"type": "custom_thing"},
        ]
    )
    assert minted == (0, 2, 3)
    assert [item["id"][:4] for item in items] == ["msg_", "fco_", "fco_", "item"]
    assert items[1]["id"] == "fco_given"
    assert next(iter(items[0])) == "id"  # first key, as OpenAI lists items
    assert without_minted_ids(items, minted) == [
        {"type": "message", "role": "user", "content": []},
        {"id": "fco_given", "type": "function_call_output", "call_id": "c", "output": ""},
        {"type": "function_call_output", "call_id": "d", "output": ""},
        {"type": "custom_thing"},
    ]


def test_every_chained_function_call_needs_an_output() -> None:
    previous = [
        {"type": "message", "role": "assistant", "content": []},
        {"type": "function_call", "call_id": "call_a", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "call_b", "name": "f", "arguments": "{}"},
    ]
    calls = function_call_ids(previous)
    assert calls == ("call_a", "call_b")
    answered = [{"type": "function_call_output", "call_id": "call_a", "output": "1"}]
    with pytest.raises(InvalidRequest) as caught:
        check_tool_outputs(calls, answered)
    assert (caught.value.message, caught.value.param, caught.value.code) == (
        "No tool output found for function call call_b.",
        "input",
        None,
    )
    check_tool_outputs(
        calls, [*answered, {"type": "function_call_output", "call_id": "call_b", "output": "2"}]
    )


def test_replaying_to_a_responses_upstream() -> None:
    assert for_responses_upstream({"id": "msg_1", "type": "message", "role": "assistant", "content": []}) == {
        "type": "message",
        "role": "assistant",
        "content": [],
    }
    assert for_responses_upstream({"id": "rs_1", "type": "reasoning", "summary": []}) is None
    kept = {"id": "rs_2", "type": "reasoning", "summary": [], "encrypted_content": "gAAA"}
    assert for_responses_upstream(kept) is kept


def test_references_resolve_within_the_chain() -> None:
    call = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}
    known = index_by_id([[call], [{"type": "item_reference", "id": "fc_1"}]])
    assert known == {"fc_1": call}
    assert resolve_references([{"type": "item_reference", "id": "fc_1"}], known) == [call]
    with pytest.raises(InvalidRequest) as caught:
        resolve_references([{"type": "item_reference", "id": "fc_9"}], known)
    assert (caught.value.message, caught.value.param) == ("Item with id 'fc_9' not found.", "input")


def test_a_request_keeps_what_it_does_not_interpret() -> None:
    body = {
        "model": "m",
        "input": "Hi",
        "previous_response_id": "resp_1",
        "stream": True,
        "tools": [],
        "reasoning": {"effort": "low"},
        "x_vendor_extension": 1,
    }
    parsed = parse_responses_request(json.dumps(body).encode())
    assert parsed.data == body
    assert (parsed.model, parsed.stream, parsed.store, parsed.previous_response_id) == (
        "m",
        True,
        True,
        "resp_1",
    )
    assert parsed.items == normalize_input("Hi")


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "m", "input": [1]}, "input[0]", "invalid_type"),
        ({"model": "m", "previous_response_id": 5}, "previous_response_id", "invalid_type"),
        ({"model": "m", "instructions": ["x"]}, "instructions", "invalid_type"),
        ({"model": "m", "stream": "yes"}, "stream", "invalid_type"),
        ({"model": ""}, "model", "invalid_type"),
    ],
)
def test_bad_fields(body: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_responses_request(json.dumps(body).encode())
    assert (caught.value.param, caught.value.code) == (param, code)


def test_not_json() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_responses_request(b"{nope")
    assert caught.value.message.startswith("We could not parse the JSON body of your request.")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"background": "x", "store": "y"}, "background"),
        ({"background": True, "store": "y"}, "store"),
        ({"store": "y", "metadata": 5}, "metadata"),
        ({"store": "y", "service_tier": 1}, "service_tier"),
        ({"store": "y", "instructions": 1}, "instructions"),
        ({"store": "y", "stream": "x"}, "stream"),
        ({"store": 1}, "store"),
        (
            {"stream": None, "store": None, "background": None, "previous_response_id": 7},
            "previous_response_id",
        ),
    ],
)
def test_the_first_bad_setting_is_the_one_reported(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_responses_request(json.dumps({"model": "m", **body}).encode())
    assert (caught.value.param, caught.value.code) == (param, "invalid_type")


def test_null_settings_are_their_defaults() -> None:
    body = {"model": "m", "stream": None, "store": None, "background": None, "previous_response_id": None}
    parsed = parse_responses_request(json.dumps(body).encode())
    assert (parsed.stream, parsed.store, parsed.background, parsed.previous_response_id) == (
        False,
        True,
        False,
        None,
    )
    with pytest.raises(InvalidRequest) as caught:
        parse_responses_request(json.dumps({"model": "m", "background": True, "store": False}).encode())
    assert caught.value.param == "background"
