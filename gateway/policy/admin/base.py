"""What every admin operation shares: the policy it works on, the audit trail, JSON merge
patches, and store failures answered as a 503."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import msgspec

from gateway.errors.client import InvalidRequest
from gateway.policy.errors import store_unavailable
from gateway.policy.store import STORE_ERRORS, PolicyStore

if TYPE_CHECKING:
    from gateway.policy.engine import PolicyService

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound=msgspec.Struct)
_ENCODER = msgspec.json.Encoder()


def store_errors_unavailable(operation: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """A Redis failure during ``operation`` becomes the policy's 503 (``policy_store_unavailable``)."""

    @functools.wraps(operation)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await operation(*args, **kwargs)
        except STORE_ERRORS:
            raise store_unavailable() from None

    return guarded


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: ``null`` removes a member, objects merge, the rest replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge(out.get(k), v)
    return out


def checked_patch(changes: object, allowed: frozenset[str]) -> dict[str, Any]:
    """``changes`` if it is an object naming only ``allowed`` fields (400 otherwise)."""
    if not isinstance(changes, dict) or set(changes) - allowed:
        raise InvalidRequest(
            f"Only these fields can be changed: {', '.join(sorted(allowed))}.", code="invalid_body"
        )
    return changes


def patched(record: S, changes: dict[str, Any]) -> S:
    """``record`` with the merge patch applied, validated as a record of its type (400 if not)."""
    try:
        out: S = msgspec.convert(merge(msgspec.to_builtins(record), changes), type(record))
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"Invalid change: {exc}", code="invalid_body") from None
    return out


class AdminOps:
    """Base of the admin operations on one policy. Every mutation is appended to the audit
    stream: time, actor (the admin key's name), action, target id and the change as JSON."""

    def __init__(self, policy: PolicyService) -> None:
        self.policy = policy
        self.store: PolicyStore = policy.store

    def now(self) -> float:
        return self.policy.clock.now()

    async def audit(self, actor: str, action: str, target: str, detail: object = None) -> None:
        await self.store.audit(
            {
                "ts": f"{self.now():.3f}",
                "actor": actor,
                "action": action,
                "target": target,
                "detail": _ENCODER.encode(detail).decode() if detail is not None else "",
            }
        )
