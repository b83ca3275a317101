"""The management plane: ``/admin/v1`` (keys, teams, usage, audit) and ``GET /admin/v1/self``.

Admin keys come from ``[admin] keys`` in the config and are never accepted on ``/v1``; inference
keys are never accepted here, except on ``/admin/v1/self`` (a key reading its own limits).
Every mutation is appended to the audit stream. Errors use OpenAI's envelope.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.params import PathParameter

from gateway.api import asgi_io
from gateway.config import Budget, Limits
from gateway.errors.client import (
    AuthenticationFailed,
    Conflict,
    GatewayError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
)
from gateway.policy import keys as keyfmt
from gateway.policy.engine import STORE_ERRORS, PolicyService
from gateway.policy.errors import store_unavailable
from gateway.policy.records import KeyRecord, TeamRecord
from gateway.services import Services

_ENCODER = msgspec.json.Encoder()
_KEY_FIELDS = {"alias", "team_id", "models", "limits", "budgets", "expires_at", "metadata"}
_TEAM_FIELDS = {"name", "models", "limits", "budgets", "metadata", "status"}

# Path parameters, declared explicitly (the inferred style is deprecated in Litestar).
KeyId = Annotated[str, PathParameter()]
TeamId = Annotated[str, PathParameter()]


class KeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    alias: str | None = None
    team_id: str | None = None
    models: tuple[str, ...] | None = None
    limits: Limits = Limits()
    budgets: tuple[Budget, ...] = ()
    expires_at: float | None = None
    metadata: dict[str, str] = {}


class TeamCreate(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    name: str | None = None
    models: tuple[str, ...] | None = None
    limits: Limits = Limits()
    budgets: tuple[Budget, ...] = ()
    metadata: dict[str, str] = {}


class Rotate(msgspec.Struct, forbid_unknown_fields=True):
    grace_seconds: float | None = None


class ResetSpend(msgspec.Struct, forbid_unknown_fields=True):
    window: str = "total"


def _services(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


def _json(status: int, value: object) -> Response[bytes]:
    return Response(
        _ENCODER.encode(value),
        status_code=status,
        media_type="application/json",
        headers={"x-request-id": asgi_io.new_request_id()},
    )


def _error(exc: GatewayError) -> Response[bytes]:
    return Response(
        exc.body(),
        status_code=exc.status_code,
        media_type="application/json",
        headers={**exc.headers, "x-request-id": asgi_io.new_request_id()},
    )


def _admin(request: Request[Any, Any, Any], *, write: bool) -> str:
    """The admin key's name; 401 for anything else (inference keys included), 403 for viewers."""
    presented = asgi_io.presented_key_from_scope(request.scope)
    if not presented:
        raise AuthenticationFailed("An admin API key is required.", code="invalid_api_key")
    digest = hashlib.sha256(presented.encode()).digest()
    found = None
    for admin in _services(request).settings.admin.keys:
        if hmac.compare_digest(admin.digest(), digest):
            found = admin
    if found is None:
        raise AuthenticationFailed("Incorrect admin API key provided.", code="invalid_api_key")
    if write and found.role != "admin":
        raise PermissionDenied("This admin key may only read.", code="insufficient_permissions")
    return found.name


async def _body(request: Request[Any, Any, Any], kind: type[Any]) -> Any:
    raw = await request.body()
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        message, _, at = str(exc).partition(" - at `$.")
        raise InvalidRequest(
            f"Invalid request body: {message}", param=at.rstrip("`") or None, code="invalid_body"
        ) from None
    except msgspec.DecodeError:
        raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None


def _limit(request: Request[Any, Any, Any], default: int = 100) -> int:
    raw = request.query_params.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise InvalidRequest("limit must be an integer from 1 to 1000.", param="limit", code="invalid_limit")
    return int(raw)


def _merge(target: Any, patch_: Any) -> Any:
    """RFC 7386 JSON merge-patch."""
    if not isinstance(patch_, dict):
        return patch_
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch_.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge(out.get(k), v)
    return out


async def _run(request: Request[Any, Any, Any], write: bool, action: Any) -> Response[bytes]:
    try:
        actor = _admin(request, write=write)
        return await action(_services(request), actor)  # type: ignore[no-any-return]
    except GatewayError as exc:
        return _error(exc)
    except STORE_ERRORS:
        return _error(store_unavailable())


async def _audit(policy: PolicyService, actor: str, action: str, target: str, detail: object = None) -> None:
    await policy.store.audit(
        {
            "ts": f"{policy.clock.now():.3f}",
            "actor": actor,
            "action": action,
            "target": target,
            "detail": _ENCODER.encode(detail).decode() if detail is not None else "",
        }
    )


async def _key_view(policy: PolicyService, record: KeyRecord, secret: str | None = None) -> dict[str, Any]:
    view: dict[str, Any] = msgspec.to_builtins(record)
    view["object"] = "gateway.key"
    spend = await policy.store.spend_of(record.root, "key", record.id, policy.clock.now())
    view["spend_usd"] = {w: v / 1e9 for w, v in spend.items()}
    view["spend_nusd"] = spend
    view["budgets_remaining_usd"] = [
        {
            "window": b.window,
            "limit_usd": b.limit_usd,
            "remaining_usd": max(0.0, b.limit_usd - spend[b.window] / 1e9),
        }
        for b in record.budgets
    ]
    if secret is not None:
        view["key"] = secret
    return view


async def _find_key(policy: PolicyService, kid: str) -> tuple[KeyRecord, dict[str, bytes]]:
    loaded = await policy.store.load_key(kid)
    if loaded is None:
        if any(c.key.id == kid for c in policy.config_keys.values()):
            raise Conflict("This key comes from the config file; change it there.", code="config_managed")
        raise NotFound(f"No key with id '{kid}'.", code="key_not_found")
    return loaded


async def _check_team(policy: PolicyService, tid: str | None) -> None:
    if tid is not None and await policy.team(tid, fresh=True) is None:
        raise InvalidRequest(f"No team with id '{tid}'.", param="team_id", code="team_not_found")


# -- keys ----------------------------------------------------------------------------------------
@post("/admin/v1/keys")
async def create_key(request: Request[Any, Any, Any]) -> Response[bytes]:
    async def act(s: Services, actor: str) -> Response[bytes]:
        spec: KeyCreate = await _body(request, KeyCreate)
        policy = s.policy
        await _check_team(policy, spec.team_id)
        kid = keyfmt.new_kid()
        if spec.alias is not None and not await policy.store.claim_alias(spec.alias, kid):
            raise Conflict(f"A key with alias '{spec.alias}' exists.", param="alias", code="alias_taken")
        secret = keyfmt.new_key(kid)
        record = KeyRecord(
            id=kid,
            alias=spec.alias,
            team_id=spec.team_id,
            models=spec.models,
            limits=spec.limits,
            budgets=spec.budgets,
            expires_at=spec.expires_at,
            metadata=spec.metadata,
            created_at=s.clock.now(),
            created_by=actor,
            masked=keyfmt.masked(secret),
        )
        await policy.store.save_key(record, hashes={"hash": policy.hasher.digest(secret)})
        await _audit(policy, actor, "key.create", kid, msgspec.to_builtins(spec))
        return _json(201, await _key_view(policy, record, secret))

    return await _run(request, True, act)


@get("/admin/v1/keys")
async def list_keys(request: Request[Any, Any, Any]) -> Response[bytes]:
    async def act(s: Services, actor: str) -> Response[bytes]:
        q = request.query_params
        limit = _limit(request)
        ids = await s.policy.store.list_ids("keys", after=q.get("cursor"), limit=limit)
        data = []
        for kid in ids:
            loaded = await s.policy.store.load_key(kid)
            if loaded is None:
                continue
            rec = loaded[0]
            if q.get("team_id") and rec.team_id != q.get("team_id"):
                continue
            if q.get("status") and rec.status != q.get("status"):
                continue
            if q.get("alias") and rec.alias != q.get("alias"):
                continue
            data.append(msgspec.to_builtins(rec))
        next_cursor = ids[-1] if len(ids) == limit else None
        return _json(200, {"object": "list", "data": data, "next_cursor": next_cursor})

    return await _run(request, False, act)


@get("/admin/v1/keys/{kid:str}")
async def read_key(request: Request[Any, Any, Any], kid: KeyId) -> Response[bytes]:
    async def act(s: Services, actor: str) -> Response[bytes]:
        record, _ = await _find_key(s.policy, kid)
        return _json(200, await _key_view(s.policy, record))

    return await _run(request, False, act)


async def _update_key(
    s: Services,
    actor: str,
    kid: str,
    action: str,
    change: Any,
    hashes: dict[str, str | bytes] | None = None,
    detail: object = None,
) -> KeyRecord:
    policy = s.policy
    record, _ = await _find_key(policy, kid)
    updated: KeyRecord = change(record)
    updated = msgspec.structs.replace(updated, version=record.version + 1)
    await policy.store.save_key(updated, hashes=hashes, old_root=record.root)
    policy.invalidate(kid)
    await _audit(policy, actor, action, kid, detail)
    return updated


@patch("/admin/v1/keys/{kid:str}")
async def update_key(request: Request[Any, Any, Any], kid: KeyId) -> Response[bytes]:
    async def act(s: Services, actor: str) -> Response[bytes]:
        try:
            changes = msgspec.json.decode(await request.body() or b"{}")
        except msgspec.DecodeError:
            raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None
        if not isinstance(changes, dict) or set(changes) - _KEY_FIELDS:
            raise InvalidRequest(
                f"Only these fields can be changed: {', '.join(sorted(_KEY_FIELDS))}.", code="invalid_body"
            )
        record, _ = await _find_key(s.policy, kid)

        def change(rec: KeyRecord) -> KeyRecord:
            merged = _merge(msgspec.to_builtins(rec), changes)
            try:
                out: KeyRecord = msgspec.convert(merged, KeyRecord)
            except msgspec.ValidationError as exc:
                raise InvalidRequest(f"Invalid change: {exc}", code="invalid_body") from None
            return out

        candidate = change(record)  # refuses an invalid change before anything is written
        if candidate.team_id != record.team_id:
            # A key's limits, spend counters and usage rollups live under its team's hash tag;
            # moving it would silently reset its budgets and split its usage report.
            raise Conflict(
                "A key's team is fixed when the key is created; create a new key in the other team.",
                param="team_id",
                code="team_change_not_supported",
            )
        if candidate.alias != record.alias:
            if candidate.alias is not None and not await s.policy.store.claim_alias(candidate.alias, kid):
                raise Conflict(
                    f"A key with alias '{candidate.alias}' exists.", param="alias", code="alias_taken"
                )
            if record.alias:
                await s.policy.store.release_alias(record.alias, kid)

        updated = await _update_key(s, actor, kid, "key.update", change, detail=changes)
        return _json(200, await _key_view(s.policy, updated))

    return await _run(request, True, act)


@post("/admin/v1/keys/{kid:str}/rotate")
async def rotate_key(request: Request[Any, Any, Any], kid: KeyId) -> Response[bytes]:
    async def act(s: Services, actor: str) -> Response[bytes]:
        spec: Rotate = await _body(request, Rotate)
        policy = s.policy
        grace = (
            spec.grace_seconds
            if spec.grace_seconds is not None
            else policy.config.default_rotation_grace_seconds
        )
        if grace < 0:
            raise InvalidRequest("grace_seconds must not be negative.", param="grace_seconds")
        _, fields = await _find_key(policy, kid)
        secret = keyfmt.new_key(kid)
        hashes: dict[str, str | bytes] = {"hash": policy.hasher.digest(secret)}
        hashes["prev_hash"] = fields["hash"] if grace > 0 else b""
        hashes["prev_until"] = f"{s.clock.now() + grace:.3f}" if grace > 0 else "0"
        updated = await _update_key(
            s,
            actor,
            kid,
            "key.rotate",
            lambda r: msgspec.structs.replace(r, masked=keyfmt.masked(secret)),
            hashes=hashes,
            detail={"grace_seconds": grace},
        )
        return _json(200, await _key_view(policy, updated, secret))

    return await _run(request, True, act)


def _status_route(status: str) -> Any:
    async def handler(request: Request[Any, Any, Any], kid: KeyId) -> Response[bytes]:
        async def act(s: Services, actor: str) -> Response[bytes]:
            updated = await _update_key(
                s,
                actor,
                kid,
                f"key.{'block' if status == 'blocked' else 'unblock'}",
                lambda r: msgspec.structs.replace(r, status=status),
            )
            return _json(200, await _key_view(s.policy, updated))

        return await _run(request, True, act)

    return handler


block_key = post("/admin/v1/keys/{kid:str}/block", name="block_key")(_status_route("blocked"))
unblock_key = post("/admin/v1/keys/{kid:str}/unblock", name="unblock_key")(_status_route("active"))


@delete("/admin/v1/keys/{kid:str}", status_code=200)
async def delete_key(request: Request[Any, Any, Any], kid: KeyId) -> Response[bytes]:
    async def act(s: Services, actor: str) -> Response[bytes]:
        record, _ = await _find_key(s.policy, kid)
        await s.policy.store.delete_key(record)
        s.policy.invalidate(kid)
        await _audit(s.policy, actor, "key.delete", kid)
        return _json(200, {"id": kid, "object": "gateway.key.deleted", "deleted": True})

    return await _run(request, True, act)


@post("/admin/v1/keys/{kid:str}/reset-spend")
async def reset_spend(request: Request[Any, Any, Any], kid: KeyId) -> Response[bytes]:
    async def act(s: Services, actor: str) -> Response[bytes]:
        spec: ResetSpend = await _body(request, ResetSpend)
        from gateway.policy.store import window_ids

        ids = window_ids(s.clock.now())
        if spec.window not in ids:
            raise InvalidRequest("window must be day, week, month or total.", param="window")
        record, _ = await _find_key(s.policy, kid)
        await s.policy.store.redis.delete(s.policy.store.spend(record.root, "key", kid, ids[spec.window][0]))
        await _audit(s.policy, actor, "key.reset_spend", kid, {"window": spec.window})
        return _json(200, await _key_view(s.policy, record))

    return await _run(request, True, act)


def _days(request: Request[Any, Any, Any], now: float) -> list[str]:
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    try:
        start = dt.datetime.strptime(request.query_params.get("from", f"{today:%Y%m%d}"), "%Y%m%d").date()
        end = dt.datetime.strptime(request.query_params.get("to", f"{today:%Y%m%d}"), "%Y%m%d").date()
    except ValueError:
        raise InvalidRequest("from and to are dates as YYYYMMDD.", code="invalid_range") from None
    if end < start or (end - start).days > 400:
        raise InvalidRequest("The range must be 1 to 400 days, from <= to.", code="invalid_range")
    return [f"{start + dt.timedelta(days=i):%Y%m%d}" for i in range((end - start).days + 1)]


_METRICS = {
    "req": "requests",
    "in": "input_tokens",
    "cin": "cache_read_tokens",
    "cwr": "cache_write_tokens",
    "out": "output_tokens",
    "rsn": "reasoning_tokens",
    "nusd": "cost_nusd",
    "err": "errors",
}


def _rows(per_day: dict[str, dict[str, int]], scope_prefix: str) -> dict[str, Any]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    total: dict[str, Any] = {v: 0 for v in _METRICS.values()}
    for day, fields in per_day.items():
        for field, value in fields.items():
            if not field.startswith(scope_prefix):
                continue
            model, _, metric = field[len(scope_prefix) :].rpartition("|")
            name = _METRICS.get(metric)
            if name is None:
                continue
            row = rows.setdefault(
                (day, model), {"day": day, "model": model, **{v: 0 for v in _METRICS.values()}}
            )
            row[name] += value
            total[name] += value
    total["cost_usd"] = total["cost_nusd"] / 1e9
    data = sorted(rows.values(), key=lambda r: (r["day"], r["model"]))
    for r in data:
        r["cost_usd"] = r["cost_nusd"] / 1e9
    return {"object": "list", "data": data, "total": total}


@get("/admin/v1/keys/{kid:str}/usage")
async def key_usage(request: Request[Any, Any, Any], kid: KeyId) -> Response[bytes]:
    async def act(s: Services, actor: str) -> Response[bytes]:
        record, _ = await _find_key(s.policy, kid)
        store = s.policy.store
        per_day = await store.rollup_days(
            lambda d: store.rollup(record.root, d), _days(request, s.clock.now())
        )
        return _json(200, _rows(per_day, f"k:{kid}|"))

    return await _run(request, False, act)


@get("/admin/v1/usage")
async def org_usage(request: Request[Any, Any, Any]) -> Response[bytes]:
    async def act(s: Services, actor: str) -> Response[bytes]:
        group = str(request.query_params.get("group_by") or "key")
        if group not in ("key", "team", "model"):
            raise InvalidRequest("group_by must be key, team or model.", param="group_by")
        store = s.policy.store
        per_day = await store.rollup_days(store.org_rollup, _days(request, s.clock.now()))
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for day, fields in per_day.items():
            for field, value in fields.items():
                scope, _, metric = field.rpartition("|")
                kind, _, ident = scope.partition(":")
                if kind != group or metric not in _METRICS:
                    continue
                fresh: dict[str, Any] = {"day": day, group: ident}
                row = rows.setdefault((day, ident), fresh)
                row[_METRICS[metric]] = row.get(_METRICS[metric], 0) + value
        data = [rows[k] for k in sorted(rows)]
        return _json(200, {"object": "list", "data": data})

    return await _run(request, False, act)


@get("/admin/v1/audit")
async def audit_log(request: Request[Any, Any, Any]) -> Response[bytes]:
    async def act(s: Services, actor: str) -> Response[bytes]:
        count = _limit(request)
        entries = await s.policy.store.read_audit(count)
        return _json(200, {"object": "list", "data": [{"id": i, **e} for i, e in entries]})

    return await _run(request, False, act)


# -- teams ---------------------------------------------------------------------------------------
@post("/admin/v1/teams")
async def create_team(request: Request[Any, Any, Any]) -> Response[bytes]:
    async def act(s: Services, actor: str) -> Response[bytes]:
        spec: TeamCreate = await _body(request, TeamCreate)
        policy = s.policy
        if not spec.id or len(spec.id) > 64 or any(c in spec.id for c in "{}:| "):
            raise InvalidRequest("id must be 1-64 characters without {, }, :, | or spaces.", param="id")
        if spec.id in policy.config_teams or await policy.store.load_team(spec.id) is not None:
            raise Conflict(f"A team with id '{spec.id}' exists.", param="id", code="team_exists")
        record = TeamRecord(
            id=spec.id,
            name=spec.name,
            models=spec.models,
            limits=spec.limits,
            budgets=spec.budgets,
            metadata=spec.metadata,
            created_at=s.clock.now(),
        )
        await policy.store.save_team(record)
        await _audit(policy, actor, "team.create", spec.id, msgspec.to_builtins(spec))
        return _json(201, msgspec.to_builtins(record))

    return await _run(request, True, act)


@get("/admin/v1/teams")
async def list_teams(request: Request[Any, Any, Any]) -> Response[bytes]:
    async def act(s: Services, actor: str) -> Response[bytes]:
        limit = _limit(request)
        ids = await s.policy.store.list_ids("teams", after=request.query_params.get("cursor"), limit=limit)
        data = (
            [msgspec.to_builtins(t) for t in s.policy.config_teams.values()]
            if "cursor" not in request.query_params
            else []
        )
        for tid in ids:
            team = await s.policy.store.load_team(tid)
            if team is not None:
                data.append(msgspec.to_builtins(team))
        return _json(
            200, {"object": "list", "data": data, "next_cursor": ids[-1] if len(ids) == limit else None}
        )

    return await _run(request, False, act)


async def _find_team(policy: PolicyService, tid: str) -> TeamRecord:
    if tid in policy.config_teams:
        raise Conflict("This team comes from the config file; change it there.", code="config_managed")
    team = await policy.store.load_team(tid)
    if team is None:
        raise NotFound(f"No team with id '{tid}'.", code="team_not_found")
    return team


@get("/admin/v1/teams/{tid:str}")
async def read_team(request: Request[Any, Any, Any], tid: TeamId) -> Response[bytes]:
    async def act(s: Services, actor: str) -> Response[bytes]:
        team = s.policy.config_teams.get(tid) or await _find_team(s.policy, tid)
        view: dict[str, Any] = msgspec.to_builtins(team)
        spend = await s.policy.store.spend_of(f"t:{tid}", "team", tid, s.clock.now())
        view["spend_nusd"] = spend
        view["spend_usd"] = {w: v / 1e9 for w, v in spend.items()}
        return _json(200, view)

    return await _run(request, False, act)


@patch("/admin/v1/teams/{tid:str}")
async def update_team(request: Request[Any, Any, Any], tid: TeamId) -> Response[bytes]:
    async def act(s: Services, actor: str) -> Response[bytes]:
        try:
            changes = msgspec.json.decode(await request.body() or b"{}")
        except msgspec.DecodeError:
            raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None
        if not isinstance(changes, dict) or set(changes) - _TEAM_FIELDS:
            raise InvalidRequest(
                f"Only these fields can be changed: {', '.join(sorted(_TEAM_FIELDS))}.", code="invalid_body"
            )
        team = await _find_team(s.policy, tid)
        try:
            updated = msgspec.convert(_merge(msgspec.to_builtins(team), changes), TeamRecord)
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"Invalid change: {exc}", code="invalid_body") from None
        updated = msgspec.structs.replace(updated, version=team.version + 1)
        await s.policy.store.save_team(updated)
        s.policy.invalidate(team=tid)
        await _audit(s.policy, actor, "team.update", tid, changes)
        return _json(200, msgspec.to_builtins(updated))

    return await _run(request, True, act)


@delete("/admin/v1/teams/{tid:str}", status_code=200)
async def delete_team(request: Request[Any, Any, Any], tid: TeamId) -> Response[bytes]:
    async def act(s: Services, actor: str) -> Response[bytes]:
        await _find_team(s.policy, tid)
        if await s.policy.store.key_ids_of_team(tid):
            raise Conflict("The team still has keys; delete or move them first.", code="team_not_empty")
        await s.policy.store.delete_team(tid)
        s.policy.invalidate(team=tid)
        await _audit(s.policy, actor, "team.delete", tid)
        return _json(200, {"id": tid, "object": "gateway.team.deleted", "deleted": True})

    return await _run(request, True, act)


@get("/admin/v1/teams/{tid:str}/usage")
async def team_usage(request: Request[Any, Any, Any], tid: TeamId) -> Response[bytes]:
    async def act(s: Services, actor: str) -> Response[bytes]:
        store = s.policy.store
        per_day = await store.rollup_days(
            lambda d: store.rollup(f"t:{tid}", d), _days(request, s.clock.now())
        )
        return _json(200, _rows(per_day, f"t:{tid}|"))

    return await _run(request, False, act)


# -- self ----------------------------------------------------------------------------------------
@get("/admin/v1/self")
async def read_self(request: Request[Any, Any, Any]) -> Response[bytes]:
    """An inference key reads its own limits and remaining budget (never another key's)."""
    s = _services(request)
    try:
        caller = await s.policy.authenticate(asgi_io.presented_key_from_scope(request.scope), fresh=True)
        view = await _key_view(s.policy, caller.key)
        view.pop("metadata", None)
        view.pop("created_by", None)
        if caller.team is not None:
            spend = await s.policy.store.spend_of(caller.key.root, "team", caller.team.id, s.clock.now())
            view["team"] = {
                "id": caller.team.id,
                "limits": msgspec.to_builtins(caller.team.limits),
                "budgets_remaining_usd": [
                    {
                        "window": b.window,
                        "limit_usd": b.limit_usd,
                        "remaining_usd": max(0.0, b.limit_usd - spend[b.window] / 1e9),
                    }
                    for b in caller.team.budgets
                ],
            }
        return _json(200, view)
    except GatewayError as exc:
        return _error(exc)
    except STORE_ERRORS:
        return _error(store_unavailable())


ROUTES = [
    create_key,
    list_keys,
    read_key,
    update_key,
    rotate_key,
    block_key,
    unblock_key,
    delete_key,
    reset_spend,
    key_usage,
    org_usage,
    audit_log,
    create_team,
    list_teams,
    read_team,
    update_team,
    delete_team,
    team_usage,
    read_self,
]
