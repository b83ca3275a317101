"""The one error translators raise: the request cannot be expressed in the target dialect.

It is always the client's request that is at fault (an unresolved ``item_reference``, a tool
result without its call, an image form the target cannot take...), so the HTTP layer answers it
as a 400 ``invalid_request_error`` with ``param`` and ``code`` as given here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class TranslationError(ValueError):
    """A request that cannot be translated; answer with HTTP 400 ``invalid_request_error``."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def rejects_malformed_input(translate: Callable[P, R]) -> Callable[P, R]:
    """Make a request translator answer malformed JSON shapes with a :class:`TranslationError`.

    Translators read client JSON as it was decoded; a part that is a string where an object
    belongs, or a number where a list belongs, surfaces as a TypeError, AttributeError or the
    like. That is the client's mistake, so it becomes a 400 rather than a 500 (the original
    exception stays chained for the logs).
    """

    @functools.wraps(translate)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return translate(*args, **kwargs)
        except TranslationError:
            raise
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
            raise TranslationError(
                "The request is malformed: a field does not have the expected type or shape."
            ) from exc

    return wrapper
