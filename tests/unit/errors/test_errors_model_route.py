"""A model of the wrong kind for its route (OpenAI's answers to a chat model on /v1/completions
or /v1/embeddings, a completions model on /v1/chat/completions): the client's error with the
upstream's words, never retried or failed over; other 403s and 404s keep their meaning."""

from __future__ import annotations

import msgspec
import pytest

from gateway.errors import ErrorKind, classify_response, error_response
from gateway.errors._classify import MODEL_NOT_FOR_ROUTE

NOW = 1_800_000_000.0
JSON = {"content-type": "application/json"}


def openai_error(message: str, *, param: str | None = None, code: str | None = None) -> bytes:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return msgspec.json.encode({"error": error})


CHAT_ON_COMPLETIONS = (
    "This is a chat model and not supported in the v1/completions endpoint. "
    "Did you mean to use v1/chat/completions?"
)
COMPLETIONS_ON_CHAT = (
    "This is not a chat model and thus not supported in the v1/chat/completions endpoint. "
    "Did you mean to use v1/completions?"
)
CHAT_ON_EMBEDDINGS = "You are not allowed to generate embeddings from this model"


@pytest.mark.parametrize(
    ("status", "message", "client_status"),
    [
        (404, CHAT_ON_COMPLETIONS, 404),
        (404, COMPLETIONS_ON_CHAT, 404),
        (403, CHAT_ON_EMBEDDINGS, 400),  # a 403 from the gateway would read as its own key's
    ],
)
def test_the_wrong_kind_of_model_is_the_clients_error_with_the_upstreams_words(
    status: int, message: str, client_status: int
) -> None:
    error = classify_response(status, JSON, openai_error(message), provider="openai", now=NOW)
    assert error.kind is ErrorKind.GENERIC
    assert error.code == MODEL_NOT_FOR_ROUTE
    assert (error.retryable, error.failover) == (False, False)
    assert error.status_code == status  # what the upstream said, kept
    answer_status, headers, body = error_response(error)
    assert answer_status == client_status
    assert headers["x-should-retry"] == "false"
    sent = msgspec.json.decode(body)["error"]
    assert sent["message"] == message
    assert (sent["type"], sent["param"], sent["code"]) == (
        "invalid_request_error",
        "model",
        MODEL_NOT_FOR_ROUTE,
    )
    assert sent["provider"] == "openai" and sent["status_code"] == status


def test_the_upstreams_words_are_scrubbed() -> None:
    message = (
        "This is a chat model and not supported in the v1/completions endpoint of "
        "https://llm.internal.example.com:8443/v1 (key sk-proj-abcdefgh12345678)."
    )
    error = classify_response(404, JSON, openai_error(message), provider="openai", now=NOW)
    assert error.code == MODEL_NOT_FOR_ROUTE
    sent = msgspec.json.decode(error_response(error)[2])["error"]
    assert "internal.example.com" not in sent["message"] and "sk-proj" not in sent["message"]
    assert "[address]" in sent["message"] and "[redacted]" in sent["message"]
    assert sent["message"].startswith("This is a chat model and not supported")


def test_an_upstream_param_is_kept() -> None:
    body = openai_error(CHAT_ON_COMPLETIONS, param="engine")
    error = classify_response(404, JSON, body, provider="openai", now=NOW)
    assert msgspec.json.decode(error_response(error)[2])["error"]["param"] == "engine"


@pytest.mark.parametrize(
    ("status", "body", "kind", "client_status", "code"),
    [
        # An unknown model on the upstream: a misconfigured deployment (another may serve it).
        (
            404,
            openai_error(
                "The model `gpt-5x` does not exist or you do not have access to it.", code="model_not_found"
            ),
            ErrorKind.CONFIG,
            502,
            "upstream_model_not_found",
        ),
        # A route the upstream does not have at all: still the deployment's problem.
        (404, openai_error("Invalid URL (POST /v1/completions)"), ErrorKind.GENERIC, 502, "upstream_error"),
        # A 403 about the gateway's own credentials or project: an auth failure, not the client's.
        (
            403,
            openai_error("You are not allowed to sample from this model"),
            ErrorKind.AUTH,
            502,
            "upstream_authentication_failed",
        ),
        # The wording under another status (a 500 quoting it) is not this rule's.
        (500, openai_error(CHAT_ON_COMPLETIONS), ErrorKind.GENERIC, 502, "upstream_error"),
    ],
)
def test_other_403s_and_404s_keep_their_meaning(
    status: int, body: bytes, kind: ErrorKind, client_status: int, code: str
) -> None:
    error = classify_response(status, JSON, body, provider="openai", now=NOW)
    assert error.kind is kind
    assert error.code != MODEL_NOT_FOR_ROUTE
    answer_status, _, sent = error_response(error)
    assert answer_status == client_status
    assert msgspec.json.decode(sent)["error"]["code"] == code
    assert error.failover is True
