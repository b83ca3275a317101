"""The chat engine as the app lifespan builds it: store, API operations, worker, MCP tools."""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from gateway.chats.events import EventHub
from gateway.chats.service import ChatService
from gateway.chats.store import ChatStore
from gateway.chats.tools import ToolSet
from gateway.chats.worker import Worker
from gateway.clock import Clock
from gateway.config import Settings
from gateway.redis.connection import blocking_client
from gateway.upstream import Router
from gateway.upstream.catalog import ModelCatalog

if TYPE_CHECKING:
    from gateway.policy.engine import PolicyService


class ChatEngine:
    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        router: Router,
        clock: Clock,
        catalog: ModelCatalog,
        policy: PolicyService | None = None,
    ) -> None:
        chats = settings.chats
        self.store = ChatStore(redis, settings.redis.key_prefix)
        # Blocking reads get their own small pool: open streams and running turns share one
        # reader (self.events), the job reader has the other connection.
        self.blocking = blocking_client(redis)
        self.events = EventHub(redis, self.blocking, clock, settings.redis.key_prefix)
        self.mcp = None
        if chats.mcp_servers:
            from gateway.chats.mcp_tools import McpTools

            self.mcp = McpTools(chats.mcp_servers, clock)
        self.service = ChatService(self.store, router, clock, {s.name for s in chats.mcp_servers})
        self.worker: Worker | None = None
        if chats.worker:
            self.worker = Worker(
                store=self.store,
                events=self.events,
                blocking=self.blocking,
                router=router,
                clock=clock,
                catalog=catalog,
                tools_for=self._tools_for,
                lease_seconds=chats.lease_seconds,
                action_timeout=chats.action_timeout_seconds,
                max_steps=chats.max_steps,
                concurrency=chats.concurrency,
                upstream_store=chats.upstream_store,
                policy=policy,
            )

    async def _tools_for(self, servers: list[str]) -> ToolSet | None:
        if self.mcp is None or not servers:
            return None
        return ToolSet(await self.mcp.tools(servers), [])

    async def start(self) -> None:
        await self.events.start()
        if self.worker is not None:
            await self.worker.start()

    async def stop(self) -> None:
        """The worker first (its turns' watchers follow events), then the event reader (open
        streams end), then the blocking client's connections."""
        try:
            if self.worker is not None:
                await self.worker.stop()
        finally:
            await self.events.stop()
            await self.blocking.aclose()
