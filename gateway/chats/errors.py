"""The chat API's refusals: ``{message, detail?, validations?}`` with an HTTP status."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec


class Validation(msgspec.Struct, frozen=True):
    field: str
    detail: str


class ErrorBody(msgspec.Struct, frozen=True, omit_defaults=True):
    message: str
    detail: str | None = None
    validations: list[Validation] | None = None


class ChatApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        detail: str | None = None,
        validations: list[Validation] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(message=message, detail=detail, validations=validations)
        self.headers: dict[str, str] = dict(headers or {})


def not_found() -> ChatApiError:
    return ChatApiError(404, "Resource not found or you do not have access to this resource")


def bad_request(message: str, detail: str | None = None) -> ChatApiError:
    return ChatApiError(400, message, detail)
