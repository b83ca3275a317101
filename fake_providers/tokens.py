"""The token estimate every fake dialect reports: about four characters per token.

- a piece of text costs ceil(len / 4) tokens;
- each input message costs at least 1 token (its text, tool-call names and arguments, tool results);
- each declared tool costs ceil(len(name + description + JSON of its parameters) / 4);
- the output costs its text plus each tool call's name and arguments, at least 1 token in all.

The same request always gets the same numbers, streamed or not.
"""

from __future__ import annotations

CHARS_PER_TOKEN = 4


def text_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def message_tokens(chars: int) -> int:
    """One input message of `chars` characters: at least 1 token."""
    return max(1, -(-chars // CHARS_PER_TOKEN))


def chars_for_tokens(tokens: int) -> int:
    return tokens * CHARS_PER_TOKEN
