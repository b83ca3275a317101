"""The control API under `/_fake`: the journal, the script queue, the Responses store, reset, status."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.handlers import HTTPRouteHandler

from fake_providers.journal import JournalPage
from fake_providers.script import InvalidScript, ScriptRequest
from fake_providers.state import FakeState

_ENCODER = msgspec.json.Encoder()
_SCRIPT_DECODER = msgspec.json.Decoder(ScriptRequest)
JSON = "application/json"


class ResetRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /_fake/reset` body, optional: `{"seed": N}` restarts ids and `created` from seed N,
    `{"seed": null}` makes them random again; without `seed` they keep their sequence."""

    seed: int | msgspec.UnsetType | None = msgspec.UNSET


_RESET_DECODER = msgspec.json.Decoder(ResetRequest)


class Status(msgspec.Struct):
    active_replies: int  # answers still being sent (hanging faults included)
    journal_size: int
    last_seq: int
    queued_steps: int


class StoredIds(msgspec.Struct):
    """`GET /_fake/responses`: the ids of the stored Responses, oldest first."""

    data: list[str]


class Forgotten(msgspec.Struct):
    """`DELETE /_fake/responses/{id}`: whether the fake held that response (it no longer does)."""

    id: str
    forgotten: bool


def _json(value: Any, status: int = 200) -> Response[bytes]:
    return Response(_ENCODER.encode(value), status_code=status, media_type=JSON)


def _problem(message: str) -> Response[bytes]:
    return _json({"error": {"message": message}}, status=400)


def _optional_int(value: str | None) -> int | None:
    return None if value is None else int(value)


def control_handlers(state: FakeState) -> list[HTTPRouteHandler]:
    @get("/_fake/requests", sync_to_thread=False)
    def list_requests(request: Request[Any, Any, Any]) -> Response[bytes]:
        query = request.query_params
        try:
            since = _optional_int(query.get("since"))
            limit = _optional_int(query.get("limit"))
        except ValueError:
            return _problem("since and limit must be integers")
        entries = state.journal.select(
            path=query.get("path"), model=query.get("model"), since=since, limit=limit
        )
        return _json(JournalPage(data=entries, last_seq=state.journal.last_seq))

    @delete("/_fake/requests", status_code=200, sync_to_thread=False)
    def clear_requests() -> Response[bytes]:
        return _json({"cleared": state.journal.clear()})

    @post("/_fake/script", status_code=200)
    async def add_script(request: Request[Any, Any, Any]) -> Response[bytes]:
        try:
            script = _SCRIPT_DECODER.decode(await request.body())
            state.scripts.add(script)
        except (msgspec.ValidationError, msgspec.DecodeError, InvalidScript) as problem:
            return _problem(str(problem))
        return _json(state.scripts.view())

    @get("/_fake/script", sync_to_thread=False)
    def show_script() -> Response[bytes]:
        return _json(state.scripts.view())

    @delete("/_fake/script", status_code=200, sync_to_thread=False)
    def clear_script() -> Response[bytes]:
        state.scripts.clear()
        return _json(state.scripts.view())

    @post("/_fake/reset", status_code=200)
    async def reset(request: Request[Any, Any, Any]) -> Response[bytes]:
        raw = await request.body()
        try:
            options = _RESET_DECODER.decode(raw) if raw.strip() else ResetRequest()
        except msgspec.DecodeError as error:
            return _problem(f"invalid reset request: {error}")
        if isinstance(options.seed, msgspec.UnsetType):
            state.reset()
        else:
            state.reset(seed=options.seed, reseed=True)
        return _json({"reset": True})

    @get("/_fake/status", sync_to_thread=False)
    def status() -> Response[bytes]:
        view = state.scripts.view()
        return _json(
            Status(
                active_replies=state.replies.active,
                journal_size=len(state.journal),
                last_seq=state.journal.last_seq,
                queued_steps=sum(len(queue.steps) for queue in view.queues),
            )
        )

    @get("/_fake/responses", sync_to_thread=False)
    def stored_responses() -> Response[bytes]:
        return _json(StoredIds(data=state.responses.ids()))

    @delete("/_fake/responses/{response_id:str}", status_code=200, sync_to_thread=False)
    def forget_response(request: Request[Any, Any, Any]) -> Response[bytes]:
        response_id: str = request.path_params["response_id"]
        return _json(Forgotten(id=response_id, forgotten=state.responses.delete(response_id)))

    @delete("/_fake/responses", status_code=200, sync_to_thread=False)
    def forget_responses() -> Response[bytes]:
        return _json({"forgotten": state.responses.clear()})

    return [
        list_requests,
        clear_requests,
        add_script,
        show_script,
        clear_script,
        reset,
        status,
        stored_responses,
        forget_response,
        forget_responses,
    ]
