"""``/admin/v1/keys``: create, list, read, change, rotate, block, delete keys; spend and usage."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, delete, get, patch, post
from litestar.params import PathParameter

from gateway.api.admin.controller import Actor, AdminController, Keys, json_body, limit_param, typed_body
from gateway.policy.admin import Deleted, KeyCreate, KeyQuery, KeyView, Page, ResetSpend, Rotate, UsageReport
from gateway.policy.records import KeyRecord

KeyId = Annotated[str, PathParameter()]


class KeysController(AdminController):
    path = "/admin/v1/keys"

    @post("/", status_code=201)
    async def create_key(self, request: Request[Any, Any, Any], keys: Keys, actor: Actor) -> KeyView:
        return await keys.create(await typed_body(request, KeyCreate), actor=actor)

    @get("/")
    async def list_keys(self, request: Request[Any, Any, Any], keys: Keys) -> Page[KeyRecord]:
        q = request.query_params
        query = KeyQuery(
            limit=limit_param(request),
            cursor=q.get("cursor"),
            team_id=q.get("team_id"),
            status=q.get("status"),
            alias=q.get("alias"),
        )
        return await keys.listing(query)

    @get("/{kid:str}")
    async def read_key(self, kid: KeyId, keys: Keys) -> KeyView:
        return await keys.read(kid)

    @patch("/{kid:str}")
    async def update_key(
        self, request: Request[Any, Any, Any], kid: KeyId, keys: Keys, actor: Actor
    ) -> KeyView:
        return await keys.update(kid, await json_body(request), actor=actor)

    @post("/{kid:str}/rotate", status_code=200)
    async def rotate_key(
        self, request: Request[Any, Any, Any], kid: KeyId, keys: Keys, actor: Actor
    ) -> KeyView:
        return await keys.rotate(kid, await typed_body(request, Rotate), actor=actor)

    @post("/{kid:str}/block", status_code=200)
    async def block_key(self, kid: KeyId, keys: Keys, actor: Actor) -> KeyView:
        return await keys.set_status(kid, "blocked", actor=actor)

    @post("/{kid:str}/unblock", status_code=200)
    async def unblock_key(self, kid: KeyId, keys: Keys, actor: Actor) -> KeyView:
        return await keys.set_status(kid, "active", actor=actor)

    @delete("/{kid:str}", status_code=200)
    async def delete_key(self, kid: KeyId, keys: Keys, actor: Actor) -> Deleted:
        return await keys.delete(kid, actor=actor)

    @post("/{kid:str}/reset-spend", status_code=200)
    async def reset_spend(
        self, request: Request[Any, Any, Any], kid: KeyId, keys: Keys, actor: Actor
    ) -> KeyView:
        return await keys.reset_spend(kid, await typed_body(request, ResetSpend), actor=actor)

    @get("/{kid:str}/usage")
    async def key_usage(self, request: Request[Any, Any, Any], kid: KeyId, keys: Keys) -> UsageReport:
        q = request.query_params
        return await keys.usage(kid, start=q.get("from"), end=q.get("to"))
