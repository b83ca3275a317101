"""Optional OpenTelemetry traces: one CLIENT span per upstream attempt, GenAI attributes.

Off unless ``[telemetry] otel_traces = true``. The SDK (the ``otel`` extra) is imported only
then, inside :func:`build_tracing`, so a gateway without traces never loads it. Spans carry
counts, names, timings and error kinds, never prompt or completion content.

The tracer provider is private to the app (never the process-global one) and samples with a
parent-based trace-id ratio (``otel_sample_ratio``). Exporting goes to OTLP/HTTP at
``otel_endpoint`` (or the ``OTEL_EXPORTER_OTLP_*`` environment), or to the exporter the caller
passes (tests use the SDK's in-memory exporter).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable
from typing import Any, TypeVar

import httpx
import msgspec

from gateway.config import ProviderKind, TelemetrySettings
from gateway.errors import AttemptFailed
from gateway.pricing import Usage

T = TypeVar("T")

# gen_ai.provider.name: the semantic-conventions value where one exists.
_PROVIDER_NAMES = {ProviderKind.OPENAI: "openai", ProviderKind.ANTHROPIC: "anthropic"}


class _ModelOnly(msgspec.Struct):
    model: str | None = None


_MODEL_DECODER = msgspec.json.Decoder(_ModelOnly)


def response_model(body: bytes) -> str | None:
    """The ``model`` of a JSON answer (every other field is skipped)."""
    try:
        return _MODEL_DECODER.decode(body).model
    except msgspec.DecodeError:
        return None


class AttemptSpan:
    """One upstream attempt's span. End it once with :meth:`succeed` or :meth:`fail`."""

    __slots__ = ("_ended", "_error_status", "_span")

    def __init__(self, span: Any, error_status: Any) -> None:
        self._span = span
        self._error_status = error_status
        self._ended = False

    def succeed(self, *, usage: Usage | None, model: str | None) -> None:
        if self._ended:
            return
        self._ended = True
        span = self._span
        if model:
            span.set_attribute("gen_ai.response.model", model)
        if usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
            if usage.cache_read_tokens:
                span.set_attribute("gen_ai.usage.cache_read.input_tokens", usage.cache_read_tokens)
            if usage.cache_write_tokens:
                span.set_attribute("gen_ai.usage.cache_write.input_tokens", usage.cache_write_tokens)
            if usage.reasoning_tokens:
                span.set_attribute("gen_ai.usage.reasoning.output_tokens", usage.reasoning_tokens)
        span.end()

    def fail(self, error_type: str, *, usage: Usage | None = None, model: str | None = None) -> None:
        """End with ``error.type`` (a low-cardinality kind, never a message) and an error status."""
        if self._ended:
            return
        self._span.set_attribute("error.type", error_type)
        self._span.set_status(self._error_status(error_type))
        self.succeed(usage=usage, model=model)


class Tracing:
    """Starts attempt spans on the app's own tracer provider."""

    def __init__(self, settings: TelemetrySettings, exporter: Any | None = None) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._provider = TracerProvider(
            resource=Resource.create({"service.name": settings.service_name}),
            sampler=ParentBased(TraceIdRatioBased(settings.otel_sample_ratio)),
        )
        if exporter is not None:
            self._provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            self._provider.add_span_processor(BatchSpanProcessor(_otlp_exporter(settings.otel_endpoint)))
        self._tracer = self._provider.get_tracer("gateway")
        self._kind = SpanKind.CLIENT
        self._error_status = lambda kind: Status(StatusCode.ERROR, kind)

    def attempt(
        self,
        *,
        operation: str,
        kind: ProviderKind,
        provider: str,
        base_url: str,
        request_model: str,
        public_model: str,
        number: int,
        stream: bool,
    ) -> AttemptSpan:
        url = httpx.URL(base_url)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": _PROVIDER_NAMES.get(kind, str(kind)),
            "gen_ai.request.model": request_model,
            "gen_ai.request.stream": stream,
            "server.address": url.host,
            "server.port": url.port or (443 if url.scheme == "https" else 80),
            "gateway.provider": provider,
            "gateway.model.alias": public_model,
            "gateway.attempt": number,
        }
        span = self._tracer.start_span(f"{operation} {request_model}", kind=self._kind, attributes=attributes)
        return AttemptSpan(span, self._error_status)

    def shutdown(self) -> None:
        self._provider.shutdown()


async def run_attempt(span: AttemptSpan | None, call: Awaitable[T]) -> T:
    """Await an attempt; if it fails, end its span with the failure's kind. A success leaves the
    span to the caller (a stream's span ends with the stream)."""
    if span is None:
        return await call
    try:
        return await call
    except AttemptFailed as failed:
        span.fail(str(failed.classified.kind))
        raise
    except BaseException as exc:
        span.fail(type(exc).__name__)
        raise


def _otlp_exporter(endpoint: str | None) -> Any:
    try:
        module = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    except ImportError as exc:
        raise RuntimeError(
            "telemetry.otel_traces needs the OTLP exporter: pip install 'llm-gateway[otel]'"
        ) from exc
    return module.OTLPSpanExporter(endpoint=endpoint) if endpoint else module.OTLPSpanExporter()


def build_tracing(settings: TelemetrySettings, exporter: Any | None = None) -> Tracing | None:
    """The app's tracing, or None when traces are off (the SDK is then never imported)."""
    if not settings.otel_traces:
        return None
    return Tracing(settings, exporter)
