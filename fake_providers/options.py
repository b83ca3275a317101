"""Options for one fake-provider server (`create_app(FakeOptions(...))`)."""

from __future__ import annotations

import msgspec


class FakeOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How a fake-provider app behaves.

    seed: when set, ids (`chatcmpl-…`, `call_…`, request ids) and `created` timestamps come from a
        seeded generator, so the same sequence of requests gets the same answers byte for byte.
    require_auth: when true, OpenAI-style routes answer OpenAI's 401 unless the request carries
        `Authorization: Bearer <anything non-empty>`.
    responses_done_marker: end Responses API streams with `data: [DONE]` (real OpenAI does not).
    journal_limit: how many requests the journal keeps; the oldest are dropped first.
    responses_limit: how many stored Responses the store keeps; the oldest are dropped first.
    """

    seed: int | None = None
    require_auth: bool = False
    responses_done_marker: bool = False
    journal_limit: int = 10000
    responses_limit: int = 10000

    def __post_init__(self) -> None:
        if self.journal_limit < 1:
            raise ValueError("journal_limit must be at least 1")
        if self.responses_limit < 1:
            raise ValueError("responses_limit must be at least 1")
