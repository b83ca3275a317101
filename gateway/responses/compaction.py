"""Compaction items: the gateway's own, and how any of them reaches an upstream.

``POST /v1/responses/compact`` on a translated upstream (or a Responses upstream without that
route) compacts a conversation by asking the routed model for a summary. The answer keeps the
conversation's user messages and ends with a ``compaction`` item whose ``encrypted_content`` is
the gateway's: :data:`PREFIX` then the summary, base64url-encoded. It is opaque to the client and
self-contained (it works with ``store: false`` and on every replica).

When a later request carries compaction items (the compacted output passed back as input), each
upstream gets what it can read: the gateway's own become a user message holding the summary
(every dialect takes that); a Responses upstream's own (encrypted by that provider) pass on to
Responses upstreams and are dropped for Chat Completions and Anthropic ones, which could not
read them.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

Item = dict[str, Any]
PREFIX = "gw-compaction-1."
SUMMARY_HEADING = "Summary of the conversation so far:\n"
# What the routed model is asked, after the conversation, to produce the summary.
INSTRUCTIONS = (
    "You are compacting a conversation so that it can continue later without its full history. "
    "Write a concise summary of everything said so far that a later turn needs: facts, names, "
    "numbers, decisions, open questions, the state of any task and any tool results that matter. "
    "Write only the summary."
)
REQUEST = "Summarize the conversation above for its continuation, as instructed."


def compaction_item(summary: str) -> Item:
    token = base64.urlsafe_b64encode(summary.encode()).decode()
    return {"id": "cmp_" + secrets.token_hex(24), "type": "compaction", "encrypted_content": PREFIX + token}


def summary_of(item: Item) -> str | None:
    """The summary of a gateway compaction item (None: not one of ours)."""
    content = item.get("encrypted_content")
    if not isinstance(content, str) or not content.startswith(PREFIX):
        return None
    try:
        return base64.urlsafe_b64decode(content[len(PREFIX) :].encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def summary_message(summary: str) -> Item:
    return {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": SUMMARY_HEADING + summary}],
    }


def has_compaction(items: Iterable[Any]) -> bool:
    return any(isinstance(item, dict) and item.get("type") == "compaction" for item in items)


def for_upstream(items: Sequence[Item], *, responses: bool) -> list[Item]:
    """``items`` with every compaction item made readable by the upstream (see the module
    docstring); the list itself when it holds none."""
    if not has_compaction(items):
        return list(items)
    out: list[Item] = []
    for item in items:
        if item.get("type") != "compaction":
            out.append(item)
            continue
        summary = summary_of(item)
        if summary is not None:
            out.append(summary_message(summary))
        elif responses:
            out.append(item)
    return out


def compacted_output(items: Sequence[Item], summary: str) -> list[Item]:
    """What ``/responses/compact`` answers: the conversation's user messages, then the summary."""
    kept = [item for item in items if item.get("type") == "message" and item.get("role") == "user"]
    return [*kept, compaction_item(summary)]
