"""What the fake remembers of files and batches, and the batch state machine.

A batch moves one step per :meth:`FileStore.advance`: validating -> in_progress -> finalizing
-> completed (the output file is written then: one answer per input line, chat completions and
embeddings computed as those routes would answer), or cancelling -> cancelled.
"""

from __future__ import annotations

from typing import Any

import msgspec

from fake_providers.composer import compose, formatted_reply
from fake_providers.ids import IdSource
from fake_providers.openai.chat_render import ChatIdentity, completion_body
from fake_providers.openai.chat_request import parse_chat_request
from fake_providers.openai.vectors import input_text, vector_for
from fake_providers.tokens import text_tokens

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()
ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/responses")
NEXT = {
    "validating": "in_progress",
    "in_progress": "finalizing",
    "finalizing": "completed",
    "cancelling": "cancelled",
}
STAMPS = {
    "in_progress": "in_progress_at",
    "finalizing": "finalizing_at",
    "completed": "completed_at",
    "cancelled": "cancelled_at",
}


class FileStore:
    """Every file and batch of one fake app."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self.batches: dict[str, dict[str, Any]] = {}

    def clear(self) -> None:
        self.files.clear()
        self.batches.clear()

    def add_file(self, ids: IdSource, filename: str, purpose: str, content: bytes) -> dict[str, Any]:
        file_id = ids.prefixed("file-", 22)
        meta: dict[str, Any] = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": ids.created(),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }
        self.files[file_id] = (meta, content)
        return meta

    def advance(self, batch_id: str, ids: IdSource) -> dict[str, Any] | None:
        """Move a batch one step (None when there is no such batch)."""
        batch = self.batches.get(batch_id)
        if batch is None:
            return None
        step = NEXT.get(batch["status"])
        if step is None:
            return batch
        batch["status"] = step
        batch[STAMPS[step]] = ids.created()
        if step == "completed":
            _, content = self.files[batch["input_file_id"]]
            lines = [line for line in content.split(b"\n") if line.strip()]
            output = b"".join(
                _ENCODER.encode(_answer_line(ids, _DECODER.decode(line))) + b"\n" for line in lines
            )
            meta = self.add_file(ids, "batch_output.jsonl", "batch_output", output)
            batch["output_file_id"] = meta["id"]
            batch["request_counts"] = {"total": len(lines), "completed": len(lines), "failed": 0}
        return batch


def _answer_line(ids: IdSource, entry: dict[str, Any]) -> dict[str, Any]:
    url, body = entry["url"], entry["body"]
    answer: Any
    if url == "/v1/chat/completions":
        chat = parse_chat_request(body)
        identity = ChatIdentity(id=ids.chat_completion_id(), created=ids.created(), model=chat.model)
        scripted = formatted_reply(chat.response_format, chat.conversation, None)
        answer = _DECODER.decode(completion_body(compose(chat.conversation, scripted, ids), identity))
    elif url == "/v1/embeddings":
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": vector_for(input_text(item), 8)}
            for i, item in enumerate(inputs)
        ]
        tokens = sum(text_tokens(input_text(item)) for item in inputs)
        answer = {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    else:
        answer = {"echo": body}
    return {
        "id": ids.prefixed("batch_req_", 24),
        "custom_id": entry.get("custom_id"),
        "response": {"status_code": 200, "request_id": ids.request_id(), "body": answer},
        "error": None,
    }
