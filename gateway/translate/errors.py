"""The one error translators raise: the request cannot be expressed in the target dialect.

It is always the client's request that is at fault (an unresolved ``item_reference``, a tool
result without its call, an image form the target cannot take...), so the HTTP layer answers it
as a 400 ``invalid_request_error`` with ``param`` and ``code`` as given here.
"""

from __future__ import annotations


class TranslationError(ValueError):
    """A request that cannot be translated; answer with HTTP 400 ``invalid_request_error``."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
