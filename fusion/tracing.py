"""Distributed traces: W3C `traceparent` carried from the HTTP request through the outbox, Kafka and every
handler, as OpenTelemetry spans exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set.

A request is a server span continuing its `traceparent` header; the relay's publish of an outbox row is
a producer span continuing the row's `traceparent` attribute (the CloudEvents distributed-tracing
extension) and putting its own on the Kafka record; a handler is a consumer span continuing the event's.
Events a span's code publishes carry that span's context (`current_traceparent`, read by the unit of work).

With no endpoint no SDK is imported and no provider installed: a span only passes the incoming
`traceparent` on, so the hot path costs a context variable and a flag check.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Literal

from fusion.binding import Event

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
EXPORT_DELAY_MS = 500  # spans leave in batches at least this often
Kind = Literal["server", "producer", "consumer", "internal"]

current_traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar("traceparent", default=None)

_service: str | None = None
_tracer: Any = None  # the SDK tracer of this process, made on first use (after a fork, in the worker)
_tracer_pid: int | None = None
_lock = threading.Lock()


class Traced:
    """The span a block runs in: its `traceparent` (what events published in the block carry)."""

    def __init__(self, traceparent: str | None, span: Any = None) -> None:
        self.traceparent = traceparent
        self._span = span

    def note(self, name: str, value: str | int) -> None:
        """An attribute of the span (nothing when traces are off)."""
        if self._span is not None:
            self._span.set_attribute(name, value)

    def failed(self, description: str) -> None:
        if self._span is not None:
            from opentelemetry.trace import Status, StatusCode

            self._span.set_status(Status(StatusCode.ERROR, description))


def name_process(service: str) -> None:
    """The `service.name` this process's spans carry (a service, "relay", "router"): the first name given,
    since the relay and the router load every service's module, each of which names its own."""
    global _service
    if _service is None:
        _service = service


def enabled() -> bool:
    return bool(os.environ.get(ENDPOINT_VARIABLE))


def span(name: str, kind: Kind, traceparent: str | None,
         attributes: Mapping[str, str | int] | None = None) -> AbstractContextManager[Traced]:
    """Run the block in a span continuing `traceparent` (a new trace when None)."""
    if not enabled():
        return _Passing(traceparent)
    return _traced(name, kind, traceparent, attributes or {})


class _Passing(AbstractContextManager[Traced]):
    """Traces off: the block's events carry the incoming traceparent, nothing else happens."""

    def __init__(self, traceparent: str | None) -> None:
        self.traced = Traced(traceparent)
        self.token: contextvars.Token[str | None] | None = None

    def __enter__(self) -> Traced:
        self.token = current_traceparent.set(self.traced.traceparent)
        return self.traced

    def __exit__(self, *_: object) -> None:
        if self.token is not None:
            current_traceparent.reset(self.token)


@contextmanager
def _traced(name: str, kind: Kind, traceparent: str | None,
            attributes: Mapping[str, str | int]) -> Iterator[Traced]:
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    propagator = TraceContextTextMapPropagator()
    parent = propagator.extract({"traceparent": traceparent}) if traceparent else None
    with tracer().start_as_current_span(name, context=parent, kind=SpanKind[kind.upper()],
                                        attributes=dict(attributes)) as current:
        carrier: dict[str, str] = {}
        propagator.inject(carrier)
        token = current_traceparent.set(carrier.get("traceparent"))
        try:
            yield Traced(carrier.get("traceparent"), current)
        finally:
            current_traceparent.reset(token)


def tracer() -> Any:
    """This process's tracer, exporting to the OTLP endpoint; made once per process (a forked worker makes its own)."""
    global _tracer, _tracer_pid
    if _tracer is None or _tracer_pid != os.getpid():
        with _lock:
            if _tracer is None or _tracer_pid != os.getpid():
                _tracer = _new_provider().get_tracer("fusioncommerce")
                _tracer_pid = os.getpid()
    return _tracer


def _new_provider() -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": _service or "fusioncommerce"}))
    # The exporter reads the endpoint (…/v1/traces is appended) and its headers from the OTEL_* variables.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(), schedule_delay_millis=EXPORT_DELAY_MS))
    return provider


def carried_by(event: Event, traced: Traced) -> Event:
    """`event` carrying the span's context, so its consumers continue that span."""
    if traced.traceparent is None or traced.traceparent == event.attributes.get("traceparent"):
        return event
    return event.with_attributes(traceparent=traced.traceparent)
