"""The fake ``/files`` and ``/batches``, with a batch state machine a test advances.

Files: upload (multipart ``file`` and ``purpose``; a ``batch`` file must be JSON lines, each
with ``custom_id``, ``method`` POST, ``url`` and ``body``), list (``purpose``, ``limit``,
``after``, ``order``), retrieve, delete and content. Batches: create (the input file must be a
``batch`` file whose lines all call ``endpoint``; ``completion_window`` is ``24h``), list,
retrieve and cancel. A batch stays where it is until ``POST /_fake/batches/{id}/advance``
moves it one step: validating -> in_progress -> finalizing -> completed (the output file is
written then: one answer per line, chat completions and embeddings computed as the routes
would), or cancelling -> cancelled. Scripted steps without a model (``fake.script([...])``)
apply to these routes too, so every fault of the catalogue can strike them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request

from fake_providers.exchange import Exchange
from fake_providers.openai.errors import OpenAIError, invalid_value, missing_parameter
from fake_providers.openai.files_store import ENDPOINTS, FileStore
from fake_providers.openai.route_kit import Refused, RouteKit
from fake_providers.reply import PlannedReply

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


def _page(items: list[dict[str, Any]], query: Any, default_limit: int) -> dict[str, Any]:
    order = query.get("order", "desc")
    items = sorted(items, key=lambda item: item["created_at"], reverse=order != "asc")
    after = query.get("after")
    if after is not None:
        names = [item["id"] for item in items]
        items = items[names.index(after) + 1 :] if after in names else []
    limit = int(query.get("limit") or default_limit)
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }


class FilesService:
    def __init__(self, kit: RouteKit, store: FileStore) -> None:
        self.kit = kit
        self.store = store

    def _run(self, request: Request[Any, Any, Any], build: Callable[[Exchange], bytes]) -> PlannedReply:
        """A files or batches call: the key check, the scripted behaviour, then ``build``."""
        kit = self.kit
        try:
            exchange = kit.start(request)
            behaviour = kit.behaviour("", exchange)
            answer = build(exchange)
        except Refused as refused:
            return refused.reply
        return kit.answer(exchange, behaviour, render=lambda: answer)

    def _file(self, file_id: str, exchange: Exchange) -> tuple[dict[str, Any], bytes]:
        found = self.store.files.get(file_id)
        if found is None:
            raise self.kit.refuse(
                OpenAIError(f"No such File object: {file_id}", param="id", status=404), exchange
            )
        return found

    async def upload(self, request: Request[Any, Any, Any]) -> PlannedReply:
        kit = self.kit
        try:
            exchange = kit.start(request)
            form = await kit.form(request, exchange)
        except Refused as refused:
            return refused.reply

        def build(exchange: Exchange) -> bytes:
            purpose = form.text("purpose")
            if purpose is None:
                raise kit.refuse(missing_parameter("purpose"), exchange)
            if purpose not in PURPOSES:
                raise kit.refuse(invalid_value("purpose", purpose, PURPOSES), exchange)
            upload = form.file("file")
            if upload is None:
                raise kit.refuse(missing_parameter("file"), exchange)
            filename, _, content = upload
            if purpose == "batch":
                self._check_batch_file(content, exchange)
            return _ENCODER.encode(self.store.add_file(kit.ids, filename, purpose, content))

        return self._run_built(request, exchange, build)

    def _run_built(
        self, request: Request[Any, Any, Any], exchange: Exchange, build: Callable[[Exchange], bytes]
    ) -> PlannedReply:
        kit = self.kit
        try:
            behaviour = kit.behaviour("", exchange)
            answer = build(exchange)
        except Refused as refused:
            return refused.reply
        return kit.answer(exchange, behaviour, render=lambda: answer)

    def _check_batch_file(self, content: bytes, exchange: Exchange) -> None:
        for number, line in enumerate(content.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                entry = _DECODER.decode(line)
            except msgspec.DecodeError:
                entry = None
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("custom_id"), str)
                or entry.get("method") != "POST"
                or entry.get("url") not in ENDPOINTS
                or not isinstance(entry.get("body"), dict)
            ):
                raise self.kit.refuse(
                    OpenAIError(
                        f"Invalid file format for Batch API. Line {number}: expected a JSON object with "
                        "'custom_id', 'method' (POST), 'url' and 'body'.",
                        param="file",
                    ),
                    exchange,
                )

    def list_files(self, request: Request[Any, Any, Any]) -> PlannedReply:
        query = request.query_params
        purpose = query.get("purpose")

        def build(exchange: Exchange) -> bytes:
            items = [
                meta for meta, _ in self.store.files.values() if purpose is None or meta["purpose"] == purpose
            ]
            return _ENCODER.encode(_page(items, query, 10000))

        return self._run(request, build)

    def retrieve(self, request: Request[Any, Any, Any], file_id: str) -> PlannedReply:
        return self._run(request, lambda exchange: _ENCODER.encode(self._file(file_id, exchange)[0]))

    def delete(self, request: Request[Any, Any, Any], file_id: str) -> PlannedReply:
        def build(exchange: Exchange) -> bytes:
            self._file(file_id, exchange)
            del self.store.files[file_id]
            return _ENCODER.encode({"id": file_id, "object": "file", "deleted": True})

        return self._run(request, build)

    def content(self, request: Request[Any, Any, Any], file_id: str) -> PlannedReply:
        kit = self.kit
        try:
            exchange = kit.start(request)
            behaviour = kit.behaviour("", exchange)
            _, content = self._file(file_id, exchange)
        except Refused as refused:
            return refused.reply
        return kit.answer(
            exchange, behaviour, render=lambda: content, content_type="application/octet-stream"
        )

    # -- batches -------------------------------------------------------------------------------
    async def create_batch(self, request: Request[Any, Any, Any]) -> PlannedReply:
        kit = self.kit
        try:
            exchange = kit.start(request)
            body = await kit.json(request, exchange)
        except Refused as refused:
            return refused.reply

        def build(exchange: Exchange) -> bytes:
            file_id = body.get("input_file_id")
            if not isinstance(file_id, str):
                raise kit.refuse(missing_parameter("input_file_id"), exchange)
            endpoint = body.get("endpoint")
            if endpoint is None:
                raise kit.refuse(missing_parameter("endpoint"), exchange)
            if endpoint not in ENDPOINTS:
                raise kit.refuse(invalid_value("endpoint", str(endpoint), ENDPOINTS), exchange)
            if body.get("completion_window") != "24h":
                raise kit.refuse(
                    invalid_value("completion_window", str(body.get("completion_window")), ("24h",)), exchange
                )
            meta, content = self._file(file_id, exchange)
            if meta["purpose"] != "batch":
                raise kit.refuse(
                    OpenAIError(
                        f"Invalid 'input_file_id': {file_id} does not have purpose 'batch'.",
                        param="input_file_id",
                    ),
                    exchange,
                )
            lines = [_DECODER.decode(line) for line in content.split(b"\n") if line.strip()]
            if any(line["url"] != endpoint for line in lines):
                raise kit.refuse(
                    OpenAIError(
                        "Every request of the input file must call the batch's endpoint.", param="endpoint"
                    ),
                    exchange,
                )
            created = kit.ids.created()
            batch = {
                "id": kit.ids.prefixed("batch_", 24),
                "object": "batch",
                "endpoint": endpoint,
                "errors": None,
                "input_file_id": file_id,
                "completion_window": "24h",
                "status": "validating",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": created,
                "in_progress_at": None,
                "expires_at": created + 86400,
                "finalizing_at": None,
                "completed_at": None,
                "failed_at": None,
                "expired_at": None,
                "cancelling_at": None,
                "cancelled_at": None,
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "metadata": body.get("metadata"),
            }
            self.store.batches[batch["id"]] = batch
            return _ENCODER.encode(batch)

        return self._run_built(request, exchange, build)

    def _batch(self, batch_id: str, exchange: Exchange) -> dict[str, Any]:
        found = self.store.batches.get(batch_id)
        if found is None:
            raise self.kit.refuse(
                OpenAIError(f"No batch found with id '{batch_id}'.", param="batch_id", status=404), exchange
            )
        return found

    def list_batches(self, request: Request[Any, Any, Any]) -> PlannedReply:
        query = request.query_params
        return self._run(
            request, lambda exchange: _ENCODER.encode(_page(list(self.store.batches.values()), query, 20))
        )

    def retrieve_batch(self, request: Request[Any, Any, Any], batch_id: str) -> PlannedReply:
        return self._run(request, lambda exchange: _ENCODER.encode(self._batch(batch_id, exchange)))

    def cancel_batch(self, request: Request[Any, Any, Any], batch_id: str) -> PlannedReply:
        def build(exchange: Exchange) -> bytes:
            batch = self._batch(batch_id, exchange)
            if batch["status"] in ("validating", "in_progress", "finalizing"):
                batch["status"] = "cancelling"
                batch["cancelling_at"] = self.kit.ids.created()
            elif batch["status"] not in ("cancelling", "cancelled"):
                raise self.kit.refuse(
                    OpenAIError(
                        f"Cannot cancel a batch with status '{batch['status']}'.",
                        param="batch_id",
                        status=409,
                    ),
                    exchange,
                )
            return _ENCODER.encode(batch)

        return self._run(request, build)
