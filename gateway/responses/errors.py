"""The Responses API's own refusals, worded as OpenAI words them (where OpenAI's text is known)."""

from __future__ import annotations

from gateway.errors.client import InvalidRequest, NotFound


def previous_response_not_found(response_id: str) -> InvalidRequest:
    """Unknown, expired, deleted or foreign ``previous_response_id`` (OpenAI's exact 400)."""
    return InvalidRequest(
        f"Previous response with id '{response_id}' not found.",
        param="previous_response_id",
        code="previous_response_not_found",
    )


def response_not_found(response_id: str) -> NotFound:
    """Unknown or foreign id on GET, DELETE and input_items."""
    return NotFound(
        f"No response found with id '{response_id}'.", param="response_id", code="response_not_found"
    )


def tool_output_missing(call_id: str) -> InvalidRequest:
    """A chained ``function_call`` whose output the follow-up does not carry."""
    return InvalidRequest(f"No tool output found for function call {call_id}.", param="input")


def tool_call_missing(call_id: str) -> InvalidRequest:
    """A ``function_call_output`` that answers no call of the conversation."""
    return InvalidRequest(
        f"No tool call found for function call output with call_id {call_id}.", param="input"
    )


def conversation_with_previous_response() -> InvalidRequest:
    # OpenAI's exact text for this case is unverified; the wording is ours.
    return InvalidRequest(
        "'previous_response_id' and 'conversation' cannot be used together: a response continues "
        "either a previous response or a conversation. Send only one of them.",
        param="conversation",
        code="mutually_exclusive_parameters",
    )


def conversation_unsupported() -> InvalidRequest:
    return InvalidRequest(
        "Conversations are not supported by this gateway; chain responses with 'previous_response_id'.",
        param="conversation",
        code="unsupported_parameter",
    )


def background_unstored() -> InvalidRequest:
    return InvalidRequest(
        "A background response is stored (it is polled and streamed from the store): "
        "'background': true needs 'store': true.",
        param="background",
        code="invalid_value",
    )


def chain_too_long(limit: int) -> InvalidRequest:
    return InvalidRequest(
        f"This conversation has reached the gateway's limit of {limit} chained responses; "
        "start a new one without 'previous_response_id'.",
        param="previous_response_id",
        code="chain_too_long",
    )


def item_not_found(item_id: str) -> InvalidRequest:
    return InvalidRequest(f"Item with id '{item_id}' not found.", param="input")
