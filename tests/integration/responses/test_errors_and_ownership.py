"""Refusals in the Responses dialect, exact to the byte of their JSON, and ownership: another
key's response behaves exactly as if it did not exist."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis

from fake_providers.testing import FakeProviders
from tests.conftest import OTHER_KEY, GatewayFactory, RunningGateway
from tests.integration.responses.support import (
    CHAT_PATH,
    call,
    key_id,
    post,
    record_key,
    responses_config,
    stored,
)


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    return gateway_factory(responses_config(fake, redis_url))


def error(message: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def not_found(response_id: str) -> dict[str, Any]:
    return error(f"No response found with id '{response_id}'.", "response_id", "response_not_found")


def previous_not_found(response_id: str) -> dict[str, Any]:
    return error(
        f"Previous response with id '{response_id}' not found.",
        "previous_response_id",
        "previous_response_not_found",
    )


def test_unknown_previous_response_is_openais_exact_400(gw: RunningGateway, fake: FakeProviders) -> None:
    answer = post(gw, {"model": "chat-model", "input": "Hi", "previous_response_id": "resp_abc"})
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/json"
    assert answer.content == (
        b'{"error":{"message":"Previous response with id \'resp_abc\' not found.",'
        b'"type":"invalid_request_error","param":"previous_response_id","code":"previous_response_not_found"}}'
    )
    assert answer.headers["x-request-id"].startswith("req_")
    assert fake.requests(path=CHAT_PATH) == []


def test_another_keys_response_does_not_exist(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    theirs = post(gw, {"model": "chat-model", "input": "Private"}, key=OTHER_KEY).json()["id"]
    fake.clear()

    chained = post(gw, {"model": "chat-model", "input": "Peek", "previous_response_id": theirs})
    assert (chained.status_code, chained.json()) == (400, previous_not_found(theirs))
    for method, path in (
        ("GET", f"/responses/{theirs}"),
        ("DELETE", f"/responses/{theirs}"),
        ("GET", f"/responses/{theirs}/input_items"),
    ):
        answer = call(gw, method, path)
        assert (answer.status_code, answer.json()) == (404, not_found(theirs)), (method, path)
    assert fake.requests(path=CHAT_PATH) == []

    # Still there for its owner, untouched by the other key's attempts.
    record = stored(redis_sync, gw, theirs)
    assert record["owner"] == record["meta"]["owner"] == key_id(OTHER_KEY)
    mine = call(gw, "GET", f"/responses/{theirs}", key=OTHER_KEY)
    assert mine.status_code == 200 and mine.json()["id"] == theirs
    # Their reads did not extend it either (a chain read would have: TTL + slack).
    assert 0 < redis_sync.ttl(record_key(gw, theirs)) <= gw.settings.responses.ttl_seconds


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_unknown_ids_are_404(gw: RunningGateway, method: str) -> None:
    answer = call(gw, method, "/responses/resp_x")
    assert answer.status_code == 404
    assert answer.content == (
        b'{"error":{"message":"No response found with id \'resp_x\'.",'
        b'"type":"invalid_request_error","param":"response_id","code":"response_not_found"}}'
    )
    listing = call(gw, "GET", "/responses/resp_x/input_items")
    assert (listing.status_code, listing.json()) == (404, not_found("resp_x"))


def test_previous_response_with_conversation(gw: RunningGateway, fake: FakeProviders) -> None:
    answer = post(
        gw,
        {"model": "chat-model", "input": "Hi", "previous_response_id": "resp_abc", "conversation": "conv_1"},
    )
    assert answer.status_code == 400
    assert answer.json() == error(
        "'previous_response_id' and 'conversation' cannot be used together: a response continues either a "
        "previous response or a conversation. Send only one of them.",
        "conversation",
        "mutually_exclusive_parameters",
    )
    alone = post(gw, {"model": "chat-model", "input": "Hi", "conversation": {"id": "conv_1"}})
    assert alone.json() == error(
        "Conversations are not supported by this gateway; chain responses with 'previous_response_id'.",
        "conversation",
        "unsupported_parameter",
    )
    assert fake.requests(path=CHAT_PATH) == []


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        (
            {"input": "Hi"},
            400,
            error("Missing required parameter: 'model'.", "model", "missing_required_parameter"),
        ),
        (
            {"model": "nope", "input": "Hi"},
            404,
            error(
                "The model `nope` does not exist or you do not have access to it.", None, "model_not_found"
            ),
        ),
        (
            {"model": "chat-model", "input": "Hi", "previous_response_id": "resp abc"},
            400,
            error(
                "Invalid 'previous_response_id': 'resp abc'. Expected an ID that contains letters, numbers, "
                "underscores, or dashes, but this value contained additional characters.",
                "previous_response_id",
                "invalid_value",
            ),
        ),
        (
            {"model": "chat-model", "input": 7},
            400,
            error(
                "Invalid type for 'input': expected a string or an array of input items, but got an integer "
                "instead.",
                "input",
                "invalid_type",
            ),
        ),
        (
            {"model": "chat-model", "input": "Hi", "store": "yes"},
            400,
            error(
                "Invalid type for 'store': expected a boolean, but got a string instead.",
                "store",
                "invalid_type",
            ),
        ),
        (
            {"model": "chat-model", "input": "Hi", "background": True, "store": False},
            400,
            error(
                "A background response is stored (it is polled and streamed from the store): "
                "'background': true needs 'store': true.",
                "background",
                "invalid_value",
            ),
        ),
    ],
    ids=["no-model", "unknown-model", "bad-previous-id", "bad-input", "bad-store", "background-unstored"],
)
def test_bad_requests(
    gw: RunningGateway, fake: FakeProviders, body: dict[str, Any], status: int, expected: dict[str, Any]
) -> None:
    answer = post(gw, body)
    assert (answer.status_code, answer.json()) == (status, expected)
    assert fake.requests(path=CHAT_PATH) == []


def test_without_a_key_and_with_a_wrong_method(gw: RunningGateway) -> None:
    with httpx.Client(timeout=30) as http:
        answer = http.get(gw.base_url + "/responses/resp_x")
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "invalid_request_error"
    wrong = call(gw, "GET", "/responses")
    assert wrong.status_code == 405
    assert wrong.json() == error("Invalid URL (GET /v1/responses)", None, "method_not_allowed")


def test_retrieving_as_a_stream_is_refused(gw: RunningGateway) -> None:
    response_id = post(gw, {"model": "chat-model", "input": "Hi"}).json()["id"]
    answer = call(gw, "GET", f"/responses/{response_id}", params={"stream": "true"})
    assert (answer.status_code, answer.json()) == (
        400,
        error(
            "Streaming a stored response is not supported by this gateway; retrieve it without 'stream'.",
            "stream",
            "unsupported_parameter",
        ),
    )
    assert call(gw, "GET", f"/responses/{response_id}", params={"stream": "false"}).status_code == 200


def test_cancel_is_for_background_responses_only(gw: RunningGateway) -> None:
    response_id = post(gw, {"model": "chat-model", "input": "Hi"}).json()["id"]
    answer = call(gw, "POST", f"/responses/{response_id}/cancel")
    assert (answer.status_code, answer.json()) == (
        400,
        error(
            "Only background responses can be cancelled; this response has already finished.",
            "response_id",
            "unsupported_parameter",
        ),
    )
    unknown = call(gw, "POST", "/responses/resp_x/cancel")
    assert (unknown.status_code, unknown.json()) == (404, not_found("resp_x"))
