"""Token log probabilities for an answer's text, as OpenAI returns them when asked.

Each piece of the text (the pieces a stream sends) counts as one token. Its log probability
and its alternatives are made up but repeatable: they follow from the token alone, so the same
answer always carries the same numbers. The chosen token is always the likeliest of its
``top_logprobs``, which are in descending order (as OpenAI's are).

Chat Completions: ``logprobs: true`` (``top_logprobs`` 0-20) puts ``{"content": [...],
"refusal": null}`` in each choice, and in each streamed text chunk for that chunk's tokens.
Responses: ``include: ["message.output_text.logprobs"]`` fills ``logprobs`` of the output text
and of each ``response.output_text.delta``.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import msgspec

MAX_TOP_LOGPROBS = 20
RESPONSES_INCLUDE = "message.output_text.logprobs"
# Tokens offered as the alternatives the model did not choose.
_OTHERS = (
    " the", " a", " and", " to", " of", " in", " is", " that", " it", " for",
    " you", " with", " on", " as", " this", " be", " at", " by", " I", " we", " not",
)  # fmt: skip


class TopLogprob(msgspec.Struct):
    token: str
    logprob: float
    bytes: list[int]


class TokenLogprob(msgspec.Struct):
    token: str
    logprob: float
    bytes: list[int]
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(msgspec.Struct):
    """A Chat Completions choice's (or streamed chunk's) ``logprobs``."""

    content: list[TokenLogprob]
    refusal: None = None


def _utf8(token: str) -> list[int]:
    return list(token.encode())


def token_logprob(token: str, top: int) -> TokenLogprob:
    """``token`` with its log probability and ``top`` alternatives (itself first)."""
    seed = zlib.crc32(token.encode())
    chosen = -round((seed % 9973) / 9973 * 0.5 + 1e-6, 6)  # between -0.5 and 0: a confident pick
    others = [other for other in _OTHERS if other != token][seed % 3 :]
    ranked = [TopLogprob(token=token, logprob=chosen, bytes=_utf8(token))]
    for rank, other in enumerate(others[: max(0, top - 1)], start=1):
        ranked.append(
            TopLogprob(token=other, logprob=round(chosen - 1.5 * rank - 0.25, 6), bytes=_utf8(other))
        )
    return TokenLogprob(token=token, logprob=chosen, bytes=_utf8(token), top_logprobs=ranked[:top])


def tokens_logprobs(pieces: Sequence[str], top: int) -> list[TokenLogprob]:
    return [token_logprob(piece, top) for piece in pieces if piece]
