"""``/openapi.json`` describes every route the app serves, and schemathesis, generating requests
from it against a served gateway in front of the fake providers, finds no 5xx and no answer that
differs from the document (status, content type, body schema).

The run is bounded (a few examples per operation) so it stays within seconds; the bad-input
batteries next to this module cover the hostile cases schemathesis does not generate.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from gateway.testing import GATEWAY_KEY
from tests.integration.hardening.conftest import ADMIN, Hardened

EXAMPLES = 4  # per operation and phase


def test_the_document_describes_every_served_route(hardened: Hardened) -> None:
    document = httpx.get(hardened.gw.root_url + "/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    described = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    app = hardened.app
    served = {(path, "POST") for path in app._routes}
    for route in app.litestar.routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        # An ASGI route declares no methods: its path is served, its methods are the document's.
        methods = set(getattr(route, "methods", ())) - {"OPTIONS", "HEAD"} or {None}
        served |= {(path, method) for method in methods}
    assert {(p, m) for p, m in served if m is not None} - described == set()
    assert {p for p, _ in described} == {p for p, _ in served}


# Not every schema-valid request succeeds: an unknown model or id is a 404, a request the fake
# upstream refuses a 4xx.
# Authentication is checked by the positive runs (the same request without the key is a 401); in
# a negative case the test's valid key replaces the broken credentials it was made with.
EXCLUDED = [positive_data_acceptance]
SKIPPED = {"/api/v1/chats/{chat_id}/stream"}  # an open event stream never ends: the chat tests read it


def fuzz(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> Callable[[], None]:
    """A few requests of ``mode`` for ``operation``, each answer checked against the document."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        # On the case itself (over the random bearer schemathesis makes up), so the
        # authentication check knows which header carries the key.
        case.headers = {**(case.headers or {}), **headers}
        excluded = EXCLUDED if mode is GenerationMode.POSITIVE else [*EXCLUDED, ignored_auth]
        case.call_and_validate(excluded_checks=excluded, timeout=30)

    return run  # type: ignore[no-any-return]


def test_the_gateway_answers_as_its_document_says(hardened: Hardened) -> None:
    """Every operation, with schema-valid and schema-invalid requests (a few of each)."""
    document = httpx.get(hardened.gw.root_url + "/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=hardened.gw.root_url)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in SKIPPED:
            continue
        operations += 1
        admin = operation.path.startswith("/admin/v1") and operation.path != "/admin/v1/self"
        headers = {"Authorization": f"Bearer {ADMIN if admin else GATEWAY_KEY}"}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(operation, mode, headers)()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                continue
            except (AssertionError, BaseExceptionGroup) as exc:  # every operation's finding
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}"[:1500])
    assert operations == sum(len(item) for item in document["paths"].values()) - len(SKIPPED)
    assert not failures, f"{len(failures)} findings:\n\n" + "\n\n".join(failures)
