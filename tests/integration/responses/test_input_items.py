"""``GET /v1/responses/{id}/input_items``: the turn's items with their ids, paged like OpenAI."""

from __future__ import annotations

from typing import Any

import pytest

from fake_providers.testing import FakeProviders
from tests.conftest import GatewayFactory, RunningGateway
from tests.integration.responses.support import call, post, responses_config


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    return gateway_factory(responses_config(fake, redis_url))


INPUT: list[dict[str, Any]] = [
    {"role": "developer", "content": "Answer in one word."},
    {"role": "user", "content": "First question"},
    {
        "id": "msg_client_given",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "An earlier answer", "annotations": []}],
    },
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Second question"}]},
    {"role": "user", "content": "Third question"},
]


@pytest.fixture
def items(gw: RunningGateway) -> tuple[str, list[dict[str, Any]]]:
    answer = post(gw, {"model": "chat-model", "input": INPUT})
    assert answer.status_code == 200, answer.text
    response_id = answer.json()["id"]
    listing = call(gw, "GET", f"/responses/{response_id}/input_items", params={"order": "asc"}).json()
    return response_id, listing["data"]


def test_items_are_normalised_with_ids(items: tuple[str, list[dict[str, Any]]]) -> None:
    _, data = items
    ids = [item["id"] for item in data]
    assert ids[2] == "msg_client_given"
    assert all(i.startswith("msg_") and len(i) == 52 for i in ids[:2] + ids[3:])
    assert len(set(ids)) == 5
    assert data == [
        {
            "id": ids[0],
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "Answer in one word."}],
        },
        {
            "id": ids[1],
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "First question"}],
        },
        INPUT[2],
        {"id": ids[3], **INPUT[3]},
        {
            "id": ids[4],
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Third question"}],
        },
    ]


def test_default_is_newest_first_and_pages_follow_after(
    gw: RunningGateway, items: tuple[str, list[dict[str, Any]]]
) -> None:
    response_id, data = items
    ids = [item["id"] for item in data]
    path = f"/responses/{response_id}/input_items"

    whole = call(gw, "GET", path).json()
    assert whole == {
        "object": "list",
        "data": data[::-1],
        "first_id": ids[4],
        "last_id": ids[0],
        "has_more": False,
    }

    page1 = call(gw, "GET", path, params={"limit": 2}).json()
    assert ([i["id"] for i in page1["data"]], page1["has_more"]) == ([ids[4], ids[3]], True)
    assert (page1["first_id"], page1["last_id"]) == (ids[4], ids[3])
    page2 = call(gw, "GET", path, params={"limit": 2, "after": page1["last_id"]}).json()
    assert ([i["id"] for i in page2["data"]], page2["has_more"]) == ([ids[2], ids[1]], True)
    page3 = call(gw, "GET", path, params={"limit": 2, "after": page2["last_id"]}).json()
    assert ([i["id"] for i in page3["data"]], page3["has_more"]) == ([ids[0]], False)
    empty = call(gw, "GET", path, params={"after": ids[0]}).json()
    assert empty == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}

    ascending = call(gw, "GET", path, params={"order": "asc", "limit": 3, "after": ids[0]}).json()
    assert [i["id"] for i in ascending["data"]] == ids[1:4]
    assert ascending["has_more"] is True


def test_the_sdk_pages_through_everything(
    gw: RunningGateway, items: tuple[str, list[dict[str, Any]]]
) -> None:
    response_id, data = items
    client = gw.openai()
    seen = [item.id for item in client.responses.input_items.list(response_id, limit=2, order="asc")]
    assert seen == [item["id"] for item in data]


@pytest.mark.parametrize(
    ("params", "message", "param", "code"),
    [
        (
            {"limit": 0},
            "Invalid 'limit': integer below minimum value. Expected a value >= 1, but got 0 instead.",
            "limit",
            "integer_below_min_value",
        ),
        (
            {"limit": 101},
            "Invalid 'limit': integer above maximum value. Expected a value <= 100, but got 101 instead.",
            "limit",
            "integer_above_max_value",
        ),
        (
            {"limit": "many"},
            "Invalid 'limit': expected an integer, but got 'many' instead.",
            "limit",
            "invalid_type",
        ),
        (
            {"order": "up"},
            "Invalid value: 'up'. Supported values are: 'asc' and 'desc'.",
            "order",
            "invalid_value",
        ),
    ],
    ids=["limit-0", "limit-101", "limit-text", "order"],
)
def test_bad_paging(
    gw: RunningGateway,
    items: tuple[str, list[dict[str, Any]]],
    params: dict[str, Any],
    message: str,
    param: str,
    code: str,
) -> None:
    response_id, _ = items
    answer = call(gw, "GET", f"/responses/{response_id}/input_items", params=params)
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }


def test_unknown_after(gw: RunningGateway, items: tuple[str, list[dict[str, Any]]]) -> None:
    response_id, _ = items
    answer = call(gw, "GET", f"/responses/{response_id}/input_items", params={"after": "msg_nope"})
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "message": f"Invalid 'after': no input item with id 'msg_nope' in response '{response_id}'.",
        "type": "invalid_request_error",
        "param": "after",
        "code": "invalid_value",
    }
