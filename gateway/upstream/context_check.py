"""Refuse, before any upstream call, a prompt that clearly does not fit the model's window.

The prompt size is an estimate (``gateway.token_estimate``: about four bytes per token plus a
small per-message overhead), so a deployment is skipped only when the estimate exceeds its
window by more than ``MARGIN`` (25%). Deployments that do not fit are dropped from the plan, so a
configured fallback with a larger window serves the request; when none fits, the client gets
OpenAI's ``context_length_exceeded`` 400 and no upstream is called.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.errors.client import InvalidRequest
from gateway.upstream import Deployment
from gateway.upstream.catalog import ModelCatalog

MARGIN = 1.25  # the estimate runs up to ~30% low on code and CJK text


def fit_plan(
    plan: list[Deployment], catalog: ModelCatalog, estimate: Callable[[], int], *, param: str
) -> list[Deployment]:
    windows = [catalog.window(d) for d in plan]
    if not any(windows):
        return plan
    tokens = estimate()
    fitting = [d for d, w in zip(plan, windows, strict=True) if w is None or tokens <= w * MARGIN]
    if fitting:
        return fitting
    window = windows[0] or min(w for w in windows if w)
    raise InvalidRequest(
        f"This model's maximum context length is {window} tokens. However, your messages resulted in "
        f"about {tokens} tokens. Please reduce the length of the messages.",
        param=param,
        code="context_length_exceeded",
    )
