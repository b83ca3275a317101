"""Telemetry: Prometheus metrics (``metrics``) and optional OpenTelemetry traces (``tracing``)."""
