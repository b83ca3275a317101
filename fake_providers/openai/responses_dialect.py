"""The Responses flavour of every fault: OpenAI's HTTP errors, Responses' in-band error events.

HTTP errors are the Chat ones except context length, which Responses words its own way. In a
stream, an in-band error comes after `response.created` and `response.in_progress`: the nested
`error` event, then `response.failed`. A dialect object is made per request, because
`response.failed` repeats the response being answered.
"""

from __future__ import annotations

from fake_providers.dialect import ErrorAnswer
from fake_providers.exchange import Exchange
from fake_providers.faults import ErrorKind
from fake_providers.openai.dialect import OpenAIDialect, error_detail
from fake_providers.openai.errors import ErrorDetail
from fake_providers.openai.responses_render import inband_error_frames
from fake_providers.openai.responses_wire import ResponseObject

CONTEXT_WINDOW_MESSAGE = (
    "Your input exceeds the context window of this model. Please adjust your input and try again."
)


def responses_error_detail(error: ErrorKind, exchange: Exchange) -> ErrorDetail:
    if error is ErrorKind.CONTEXT_LENGTH:
        return ErrorDetail(
            message=CONTEXT_WINDOW_MESSAGE,
            type="invalid_request_error",
            param="input",
            code="context_length_exceeded",
        )
    return error_detail(error, exchange)


class ResponsesDialect:
    inband_head = 2  # response.created, response.in_progress
    default_inband_error = ErrorKind.SERVER_ERROR
    default_200_error = ErrorKind.SERVER_ERROR

    def __init__(self, base: OpenAIDialect, started: ResponseObject) -> None:
        self._base = base
        self._started = started

    def success_headers(self, exchange: Exchange, *, stream: bool) -> list[tuple[str, str]]:
        return self._base.success_headers(exchange, stream=stream)

    def error_answer(self, error: ErrorKind, exchange: Exchange) -> ErrorAnswer:
        if error is ErrorKind.CONTEXT_LENGTH:
            return self._base.error_with(400, responses_error_detail(error, exchange), exchange)
        return self._base.error_answer(error, exchange)

    def inband_frames(self, error: ErrorKind, exchange: Exchange, *, sent: int) -> list[bytes]:
        return inband_error_frames(self._started, responses_error_detail(error, exchange), sent)
