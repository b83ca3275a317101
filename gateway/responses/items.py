"""Input and output items: normalising a turn for the record, checks, and shaping a replay.

Pure functions over plain dicts; nothing here does I/O. The caller's objects are never mutated.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gateway.responses.errors import item_not_found, tool_call_missing, tool_output_missing

Item = dict[str, Any]

# Id prefixes OpenAI uses for items, by item type (others get "item_").
_ID_PREFIX = {
    "message": "msg_",
    "function_call": "fc_",
    "function_call_output": "fco_",
    "reasoning": "rs_",
    "item_reference": "ref_",
}


def new_item_id(kind: str) -> str:
    return _ID_PREFIX.get(kind, "item_") + secrets.token_hex(24)


def _text_parts(role: str, text: str) -> list[Item]:
    if role == "assistant":
        return [{"type": "output_text", "text": text, "annotations": []}]
    return [{"type": "input_text", "text": text}]


def normalize_item(item: Mapping[str, Any]) -> Item:
    """One input item in the form OpenAI lists it: typed, message content as parts."""
    kind = item.get("type")
    if kind is None and "role" in item:
        kind = "message"
    if kind != "message":
        return dict(item)
    out: Item = {"type": "message", **item}  # ``type`` first (the item's own is "message")
    content = out.get("content")
    if isinstance(content, str):
        out["content"] = _text_parts(str(out.get("role")), content)
    return out


def normalize_input(value: str | Sequence[Mapping[str, Any]] | None) -> list[Item]:
    """A request's ``input`` as a list of typed items (a string is one user message)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": _text_parts("user", value)}]
    return [normalize_item(item) for item in value]


def with_ids(items: Sequence[Item]) -> tuple[list[Item], tuple[int, ...]]:
    """Items for the record: each with an ``id`` (first key when minted), and which were minted."""
    out: list[Item] = []
    minted: list[int] = []
    for index, item in enumerate(items):
        if isinstance(item.get("id"), str) and item["id"]:
            out.append(item)
            continue
        minted.append(index)
        out.append({"id": new_item_id(str(item.get("type"))), **item})
    return out, tuple(minted)


def function_call_ids(output: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    return tuple(str(item.get("call_id")) for item in output if item.get("type") == "function_call")


def check_tool_outputs(previous_calls: Iterable[str], new_items: Sequence[Item]) -> None:
    """A follow-up must answer every ``function_call`` its previous response ended with."""
    answered = {item.get("call_id") for item in new_items if item.get("type") == "function_call_output"}
    for call_id in previous_calls:
        if call_id not in answered:
            raise tool_output_missing(call_id)


def check_outputs_answer_calls(previous_calls: Iterable[str], new_items: Sequence[Item]) -> None:
    """Every ``function_call_output`` answers a call: one the previous response ended with, or
    one earlier in the same input."""
    known = set(previous_calls)
    for item in new_items:
        kind = item.get("type")
        if kind == "function_call":
            known.add(str(item.get("call_id")))
        elif kind == "function_call_output" and str(item.get("call_id")) not in known:
            raise tool_call_missing(str(item.get("call_id")))


def without_minted_ids(items: Sequence[Item], minted: Iterable[int]) -> list[Item]:
    """Drop the ids the gateway minted: the upstream never saw them."""
    drop = set(minted)
    if not drop:
        return list(items)
    return [
        {k: v for k, v in item.items() if k != "id"} if index in drop else item
        for index, item in enumerate(items)
    ]


def for_responses_upstream(item: Item) -> Item | None:
    """A history item replayed to a Responses upstream that does not hold it.

    Item ids are dropped (they belong to another upstream, or one that forgot them, and are
    optional on input); reasoning is kept only when it carries ``encrypted_content``, the one
    form an upstream accepts without having stored it.
    """
    kind = item.get("type")
    if kind == "reasoning":
        return item if item.get("encrypted_content") else None
    if kind == "item_reference" or "id" not in item:
        return item
    return {k: v for k, v in item.items() if k != "id"}


def resolve_references(items: Sequence[Item], known: Mapping[str, Item]) -> list[Item]:
    """Replace ``item_reference`` items with the items they name (from the chain's history)."""
    out: list[Item] = []
    for item in items:
        if item.get("type") == "item_reference":
            target = known.get(str(item.get("id")))
            if target is None:
                raise item_not_found(str(item.get("id")))
            out.append(target)
        else:
            out.append(item)
    return out


def index_by_id(groups: Iterable[Iterable[Item]]) -> dict[str, Item]:
    known: dict[str, Item] = {}
    for group in groups:
        for item in group:
            item_id = item.get("id")
            if isinstance(item_id, str) and item.get("type") != "item_reference":
                known.setdefault(item_id, item)
    return known
